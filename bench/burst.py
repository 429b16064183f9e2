"""Back-pressure and memory: a burst of events at full speed into cad.events, one worker.

The Milwaukee calls are repeated with shifted ids and times (`bench/pipeline.py` `preload`,
the replay's `repeat`) and sent flat out while one worker runs; the worker's resident memory
(VmRSS of /proc/PID/status) is sampled every half second. The run passes when the worker
never exits and every event is accounted for on its /metrics: normalised + dead-lettered ==
produced. Beside RSS it samples what RocksDB holds (`rtcc_table_store_bytes`), so a rise
can be told apart: RocksDB's memtables and caches, or the rest of the process.

    python -m bench.burst                   # 1,000,000 events (30 x Milwaukee, capped)
    python -m bench.burst --events 20000    # a smoke run
    python -m bench.burst --faust-rocksdb   # Faust's RocksDB defaults instead of RTCC_ROCKSDB_*
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.pipeline import (MILWAUKEE_EVENTS, delete_deployment, metric_sums, preload,
                            summed_over_labels)
from streams import admin
from streams.config import Settings, load
from streams.processes import free_port, label, scrape_metrics, start_worker, stop

MIB = 1024 * 1024
# faust/stores/rocksdb.py: what a worker gets without RTCC_ROCKSDB_* (per table partition)
FAUST_ROCKSDB_DEFAULTS = {"rocksdb_write_buffer_bytes": 64 * MIB,
                          "rocksdb_max_write_buffers": 3,
                          "rocksdb_block_cache_bytes": 2048 * MIB}


def vm_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def store_mib(series: dict[str, dict[str, float]]) -> dict[str, float]:
    """MiB RocksDB holds on a worker, by kind (memtables, block_cache, table_readers), from
    one scrape of its /metrics (`scrape_metrics`)."""
    sizes: dict[str, float] = {}
    for labels, value in series.get("rtcc_table_store_bytes", {}).items():
        kind = label(labels, "kind") or "?"
        sizes[kind] = sizes.get(kind, 0.0) + value / MIB
    return sizes


def burst(events: int, partitions: int, stages: str | None, timeout_s: float,
          tmp: Path, faust_rocksdb: bool = False) -> dict:
    run = uuid.uuid4().hex[:6]
    base = load()
    settings: Settings = dataclasses.replace(
        base, app_id=f"rtcc-burst-{run}", topic_prefix=f"burst.{run}.",
        topic_partitions=partitions, web_port=free_port(), data_dir=tmp / "worker",
        log_format="text", stages=stages or base.stages,
        **(FAUST_ROCKSDB_DEFAULTS if faust_rocksdb else {}))
    admin.create_topics(settings)
    log = tmp / "worker.log"
    proc = start_worker(settings, log)
    samples: list[tuple[float, float]] = []
    memtables: list[tuple[float, float]] = []  # (s, MiB) of the RocksDB memtables
    produced = {"n": 0, "error": None, "s": 0.0}
    t0 = time.monotonic()
    try:
        while True:  # ready: /metrics answers
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited at start; log {log}")
            try:
                metric_sums(settings.web_port)
                break
            except OSError:
                time.sleep(0.3)

        repeat = math.ceil(events / MILWAUKEE_EVENTS)

        def produce() -> None:
            started = time.monotonic()
            try:
                produced["n"] = preload(settings, repeat, events).events_sent
            except BaseException as exc:  # noqa: BLE001
                produced["error"] = exc
            produced["s"] = time.monotonic() - started

        producer = threading.Thread(target=produce, daemon=True)
        start = time.monotonic()
        producer.start()
        done_at = None
        accounted = 0.0
        while time.monotonic() < start + timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited ({proc.returncode}) during the burst; "
                                   f"log {log}")
            rss = vm_rss_mib(proc.pid)
            if rss is not None:
                samples.append((time.monotonic() - start, rss))
            try:
                series = scrape_metrics(settings.web_port)
                m = summed_over_labels(series)
                accounted = m.get("rtcc_events_normalised_total", 0) + m.get(
                    "rtcc_events_dead_lettered_total", 0)
                memtables.append((time.monotonic() - start,
                                  store_mib(series).get("memtables", 0.0)))
            except OSError:
                pass
            if not producer.is_alive():
                if produced["error"]:
                    raise RuntimeError(f"the burst failed: {produced['error']}")
                if accounted >= produced["n"]:
                    done_at = time.monotonic() - start
                    break
            time.sleep(0.5)
        series = scrape_metrics(settings.web_port)  # one scrape for the figures below
        m = summed_over_labels(series)
        normalised = m.get("rtcc_events_normalised_total", 0)
        dead = m.get("rtcc_events_dead_lettered_total", 0)
        # the later stages read the burst from Kafka at their own pace: how far they got
        correlated = m.get("rtcc_correlation_events_total", 0)
        text = log.read_text(errors="replace")
        store = store_mib(series)
        every = max(1, len(samples) // 30)
        return {
            "events": produced["n"], "normalised": int(normalised), "dead_lettered": int(dead),
            "accounted": int(normalised + dead) == produced["n"],
            "correlated_by_then": int(correlated),
            "produce_s": round(produced["s"], 1),
            "done_s": None if done_at is None else round(done_at, 1),
            "events_per_s": None if not done_at else round(produced["n"] / done_at),
            "peak_rss_mib": round(max(r for _, r in samples), 1) if samples else None,
            "start_rss_mib": round(samples[0][1], 1) if samples else None,
            "end_rss_mib": round(samples[-1][1], 1) if samples else None,
            "rocksdb": "faust defaults" if faust_rocksdb else "RTCC_ROCKSDB_* settings",
            "peak_memtables_mib": round(max((m for _, m in memtables), default=0.0), 1),
            "end_store_mib": {k: round(v, 1) for k, v in store.items()},
            "rss_over_time": [(round(t), round(r)) for t, r in samples[::every]],
            "memtables_over_time": [(round(t), round(m)) for t, m in memtables[::every]],
            "crashed": "Crashed reason=" in text or "Traceback" in text,
            "worker_alive": proc.poll() is None,
            "total_s": round(time.monotonic() - t0, 1),
        }
    finally:
        stop(proc)
        delete_deployment(settings, [settings.app_id])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--stages", help="RTCC_STAGES of the worker (default: the setting)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--faust-rocksdb", action="store_true",
                        help="run with Faust's RocksDB defaults (64 MiB x 3 memtables, 2 GiB "
                             "block cache per table partition), to compare")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="rtcc-burst-"))
    try:
        r = burst(args.events, args.partitions, args.stages, args.timeout, tmp,
                  faust_rocksdb=args.faust_rocksdb)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for k, v in r.items():
        if not k.endswith("_over_time"):
            print(f"{k:18} {v}")
    print("rss (s, MiB)       " + " ".join(f"{t}:{m}" for t, m in r["rss_over_time"]))
    print("memtables (s, MiB) " + " ".join(f"{t}:{m}" for t, m in r["memtables_over_time"]))
    ok = r["accounted"] and not r["crashed"] and r["worker_alive"]
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
