"""What the rtcc_* metrics cost: the same replay drained by workers with metrics on and off.

    python -m bench.metrics_overhead                       # 10,000 events, 3 pairs
    python -m bench.metrics_overhead --events 3000 --pairs 1   # smoke

One run: the same Milwaukee rows are pre-loaded into a fresh deployment (topic prefix and
app id) per trial, then one `rtcc worker` (RTCC_STAGES, default ingest,correlate,kpi,publish)
drains them with RTCC_METRICS_ENABLED=true or false. Trials alternate on/off, off/on, ...
so that a drift of the shared box's load falls on both alike.

With metrics off the worker has no counters to say when it is done, so neither trial uses
them: a trial is done when every output topic (SA updates, finished incidents, KPI,
dead letters, audience topics) has not grown for --stable-s seconds, and its time is read
from Kafka: the first normalised event's CreateTime to the last output record's
CreateTime (start-up and the stability wait are outside it). The outputs' counts must be
equal in every trial (the pipeline is deterministic on a replay), which checks that each
trial drained the whole backlog. CPU is the worker's user+system time from start to done,
start-up and idle tail included (alike in both).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from bench.ingest import RESULTS_DIR, code_state, machine_info, proc_usage
from bench.pipeline import check_logs, delete_deployment, preload, start_workers
from streams import admin, config
from streams.config import Settings
from streams.processes import free_port, stop
from streams.topics import (AUDIENCES, DEAD_LETTER, FINISHED_INCIDENTS, KPI, NORMALISED,
                            SA_UPDATES, audience_topic)

POLL_S = 0.5


def output_topics(settings: Settings) -> list[str]:
    stages = {s.strip() for s in settings.stages.split(",")}
    specs = [DEAD_LETTER, SA_UPDATES, FINISHED_INCIDENTS, KPI]
    if "publish" in stages:
        specs += [audience_topic(a) for a in AUDIENCES]
    return [settings.topic(spec.name) for spec in specs]


async def _ends_and_edges(bootstrap: str, layout: dict[str, int], topics: list[str],
                          first_of: list[str] | None = None) -> dict[str, Any]:
    """End offsets of `topics`; with `first_of`, also the last CreateTime of `topics` and
    the first CreateTime of a normalised event (not a progress mark) in `first_of`."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(layout[t])]
        ends = await consumer.end_offsets(tps)
        out: dict[str, Any] = {"counts": {t: sum(ends[tp] for tp in tps if tp.topic == t)
                                          for t in topics}}
        if first_of is None:
            return out
        last_ms = 0
        for tp in tps:  # the last record of each partition
            if ends[tp] == 0:
                continue
            consumer.assign([tp])
            consumer.seek(tp, ends[tp] - 1)
            record = await consumer.getone()
            last_ms = max(last_ms, record.timestamp)
        first_ms = None
        for topic in first_of:  # the first event of each partition (marks come first, too)
            for p in range(layout[topic]):
                tp = TopicPartition(topic, p)
                consumer.assign([tp])
                consumer.seek(tp, 0)
                found = False
                while not found:
                    batch = await consumer.getmany(tp, timeout_ms=2000, max_records=200)
                    records = batch.get(tp, [])
                    if not records:
                        break
                    for record in records:
                        doc = orjson.loads(record.value) if record.value else None
                        if isinstance(doc, dict) and "mark" not in doc:
                            first_ms = record.timestamp if first_ms is None else min(
                                first_ms, record.timestamp)
                            found = True
                            break
        out["first_ms"], out["last_ms"] = first_ms, last_ms
        return out
    finally:
        await consumer.stop()


def trial(base: Settings, args: argparse.Namespace, tmp: Path, tag: str,
          enabled: bool) -> dict[str, Any]:
    settings = dataclasses.replace(base, topic_prefix=f"{base.topic_prefix}{tag}.",
                                   app_id=f"{base.app_id}-{tag}", metrics_enabled=enabled,
                                   web_port=free_port())
    try:
        admin.create_topics(settings)
        layout = admin.list_topics(settings)
        n = preload(settings, 1, args.events).events_sent
        topics = output_topics(settings)
        procs, configs, logs = start_workers(settings, 1, tmp, tag)
        started = time.time()
        try:
            last_total, stable_since = -1, time.time()
            while True:
                if procs[0].poll() is not None:
                    raise RuntimeError(f"worker exited with {procs[0].returncode}")
                counts = asyncio.run(_ends_and_edges(settings.kafka_bootstrap, layout,
                                                     topics))["counts"]
                total = sum(counts.values())
                now = time.time()
                if total != last_total:
                    last_total, stable_since = total, now
                elif total > 0 and now - stable_since >= args.stable_s:
                    break
                if now - started > args.timeout:
                    raise TimeoutError(f"{tag}: not drained in {args.timeout:.0f} s")
                time.sleep(POLL_S)
            cpu_s, rss = proc_usage(procs[0].pid)
            exposition = _metrics_page(configs[0].web_port)
            check_logs(logs)
        finally:
            stop(procs[0])
        edges = asyncio.run(_ends_and_edges(settings.kafka_bootstrap, layout, topics,
                                            [settings.topic(NORMALISED.name)]))
        seconds = (edges["last_ms"] - edges["first_ms"]) / 1000
        counts = {t[len(settings.topic_prefix):]: c for t, c in edges["counts"].items()}
        return {"tag": tag, "metrics": enabled, "events": n, "seconds": seconds,
                "events_per_s": n / seconds, "cpu_s": cpu_s,
                "cpu_s_per_1k_with_startup": 1000 * cpu_s / n, "peak_rss_mib": rss,
                "outputs": counts, "rtcc_series_on_metrics_page": exposition}
    finally:
        delete_deployment(settings, [settings.app_id])


def _metrics_page(port: int) -> int:
    """rtcc_ sample lines the worker serves (0 with metrics off)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return sum(1 for line in r.read().decode().splitlines() if line.startswith("rtcc_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_overhead",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="Milwaukee rows per trial")
    parser.add_argument("--pairs", type=int, default=3, help="on/off pairs (alternating order)")
    parser.add_argument("--stages", default="ingest,correlate,kpi,publish")
    parser.add_argument("--store", default="rocksdb://")
    parser.add_argument("--idle-s", type=float, default=1.0)
    parser.add_argument("--stable-s", type=float, default=8.0,
                        help="outputs unchanged this long: the trial is done")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    started = datetime.now(timezone.utc)
    run_id = uuid.uuid4().hex[:8]
    base_env = config.load()
    with tempfile.TemporaryDirectory(prefix="rtcc-bench-metrics-") as tmp_name:
        tmp = Path(tmp_name)
        base = dataclasses.replace(base_env, topic_prefix=f"bench.{run_id}.",
                                   app_id=f"rtcc-bench-{run_id}", data_dir=tmp / "worker",
                                   table_store=args.store, stages=args.stages,
                                   idle_s=args.idle_s)
        report: dict[str, Any] = {"started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  "machine": machine_info(base), "code": code_state(),
                                  "args": {k: str(v) for k, v in vars(args).items()},
                                  "trials": []}
        for i in range(args.pairs):
            order = (True, False) if i % 2 == 0 else (False, True)
            for enabled in order:
                tag = f"p{i}{'on' if enabled else 'off'}"
                print(f"bench: trial {tag}", file=sys.stderr)
                result = trial(base, args, tmp, tag, enabled)
                result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
                report["trials"].append(result)
                print(f"bench: {tag}: {result['events_per_s']:,.0f} events/s, "
                      f"{result['seconds']:.1f} s, CPU {result['cpu_s']:.1f} s, "
                      f"outputs {result['outputs']}", file=sys.stderr)
    trials = report["trials"]
    outputs = {json.dumps(t["outputs"], sort_keys=True) for t in trials}
    report["outputs_equal"] = len(outputs) == 1
    on = [t for t in trials if t["metrics"]]
    off = [t for t in trials if not t["metrics"]]
    summary = {
        "on_events_per_s": [round(t["events_per_s"], 1) for t in on],
        "off_events_per_s": [round(t["events_per_s"], 1) for t in off],
        "on_median": statistics.median(t["events_per_s"] for t in on),
        "off_median": statistics.median(t["events_per_s"] for t in off),
        "on_cpu_s_median": statistics.median(t["cpu_s"] for t in on),
        "off_cpu_s_median": statistics.median(t["cpu_s"] for t in off),
        "pair_ratios_on_over_off": [
            round(a["events_per_s"] / b["events_per_s"], 3)
            for a, b in zip(on, off)],
    }
    summary["overhead_throughput_pct"] = 100 * (1 - summary["on_median"] / summary["off_median"])
    summary["overhead_cpu_pct"] = 100 * (summary["on_cpu_s_median"] / summary["off_cpu_s_median"] - 1)
    report["summary"] = summary
    print(json.dumps(summary, indent=2))
    if not report["outputs_equal"]:
        print(f"bench: WARNING: the trials' outputs differ: {outputs}", file=sys.stderr)
    path = args.out or RESULTS_DIR / f"metrics-overhead-{started.strftime('%Y-%m-%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"bench: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
