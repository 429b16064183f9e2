"""One worker's CPU at fixed live input rates: what a feed of N events/s costs it.

    python -m bench.live_cpu [--rates 0,100,500,1000] [--seconds 12] [--warmup-s 8]

For each rate, a fresh deployment (topics, group, RocksDB) and one worker with the stages
of bench/pipeline.py's row B; once it is ready, the Milwaukee replay is sent at that rate
and the worker's CPU (user + system, /proc) is read over `--seconds` after `--warmup-s`
(rate 0: the worker idle). Prints cores used and CPU seconds per 1,000 events.

Why beside `make bench`: the latency runs' CPU per event mixes the feed with its start and
its idle tail, and one figure per rate hides the shape. Below saturation a worker's cost is
per fetch and per wake-up rather than per event (bench/NOTES.md, section 26), which shows
as cores used that grow far slower than the rate. Settings come from the environment
(RTCC_FETCH_MIN_BYTES=1 python -m bench.live_cpu ...): run it twice to compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.ingest import proc_usage
from bench.pipeline import (PIPELINE_STAGES, delete_deployment, paced_feed, start_workers,
                            wait_ready)
from streams import admin, config
from streams.config import Settings
from streams.processes import stop


def worker_cores(settings: Settings, rate: int, seconds: float, warmup_s: float,
                 tmp: Path) -> float:
    """Cores one fresh worker uses while a replay comes in at `rate` (0: none)."""
    admin.create_topics(settings)
    procs, configs, _ = start_workers(settings, 1, tmp, f"cpu{rate}")
    sender: threading.Thread | None = None
    try:
        wait_ready(configs)
        if rate:  # the feed outlasts the measurement
            events = int(rate * (warmup_s + seconds + 2))
            sender = threading.Thread(target=paced_feed, args=(settings, events, rate))
            sender.start()
        time.sleep(warmup_s)
        cpu0, t0 = proc_usage(procs[0].pid)[0], time.monotonic()
        time.sleep(seconds)
        return (proc_usage(procs[0].pid)[0] - cpu0) / (time.monotonic() - t0)
    finally:
        if sender is not None:
            sender.join()
        for proc in procs:
            stop(proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rates", default="0,100,500,1000",
                        help="input rates, events/s (0: idle)")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured per rate")
    parser.add_argument("--warmup-s", type=float, default=8.0,
                        help="feed before the measurement starts")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    base = config.load()
    print("| input events/s | worker cores | CPU s per 1,000 events |")
    print("|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="rtcc-live-cpu-") as tmp_name:
        for rate in rates:
            run = uuid.uuid4().hex[:8]
            settings = dataclasses.replace(base, topic_prefix=f"bench.cpu.{run}.",
                                           app_id=f"rtcc-bench-cpu-{run}", stages=PIPELINE_STAGES,
                                           table_store="rocksdb://")
            try:
                cores = worker_cores(settings, rate, args.seconds, args.warmup_s,
                                     Path(tmp_name))
            finally:
                delete_deployment(settings, [settings.app_id])
            per_1k = f"{1000 * cores / rate:.2f}" if rate else "n/a"
            print(f"| {rate:,} | {cores:.3f} | {per_1k} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
