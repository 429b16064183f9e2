"""Profile a real worker draining a backlog, with py-spy (`pip install -e '.[bench]'`).

    python -m bench.profile [--stages ingest,correlate,kpi] [--repeat 1] [--events N]
                            [--pace EVENTS_PER_S]

Fresh topics, the Milwaukee backlog pre-loaded as in bench/pipeline.py, one worker, and
`py-spy record` attached to it from its first output until every event is accounted for.
With `--pace` the worker starts on empty topics and the events are sent at that rate while
it is profiled: the live path (small batches), which the latency goal is about, costs
differently per event from draining a backlog.
Writes the collapsed stacks (bench/results/profile-*.txt, for speedscope or flamegraph.pl)
and prints the functions with the most samples, inclusive and own.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.pipeline import (STAGE_DONE, delete_deployment, metric_sums, poll_s, preload,
                            wait_ready)
from bench.ingest import RESULTS_DIR
from streams import admin, config
from streams.processes import free_port, start_worker, stop


def summarise(path: Path, top: int = 40) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1]
                  + ")" if " (" in f else f for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "own:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stages", default="ingest,correlate,kpi")
    parser.add_argument("--store", default="rocksdb://")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--events", type=int)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--pace", type=float, help="send the events at this rate, live")
    args = parser.parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    run = uuid.uuid4().hex[:8]
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    out = RESULTS_DIR / f"profile-{started}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtcc-prof-") as tmp:
        settings = dataclasses.replace(
            config.load(), topic_prefix=f"bench.{run}.", app_id=f"rtcc-bench-{run}",
            data_dir=Path(tmp) / "worker", table_store=args.store, web_port=free_port(),
            stages=args.stages, idle_s=1.0)
        admin.create_topics(settings)
        try:
            n = 0 if args.pace else preload(settings, args.repeat, args.events).events_sent
            checks = [STAGE_DONE[s] for s in args.stages.split(",") if s in STAGE_DONE]
            proc = start_worker(settings, Path(tmp) / "worker.log")
            spy = None

            def record() -> subprocess.Popen[bytes]:
                return subprocess.Popen([pyspy, "record", "-p", str(proc.pid), "-r",
                                         str(args.rate), "--format", "raw", "-o", str(out),
                                         "--nonblocking"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                if args.pace:
                    wait_ready([settings])
                    spy = record()
                    t0 = time.time()
                    n = preload(settings, args.repeat, args.events, args.pace).events_sent
                else:
                    t0 = time.time()
                while True:
                    try:
                        m = metric_sums(settings.web_port)
                    except OSError:
                        m = {}
                    if spy is None and m.get("rtcc_events_in_total"):
                        spy = record()
                        t0 = time.time()
                    if m and all(c(m, n) for c in checks):
                        break
                    time.sleep(poll_s(time.time() - t0))  # the scrapes are in the profile
                print(f"profile: {n:,} events in {time.time() - t0:.1f} s", file=sys.stderr)
            finally:
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=60)
                stop(proc)
        finally:
            delete_deployment(settings, [settings.app_id])
    print(summarise(out))
    print(f"\nprofile: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
