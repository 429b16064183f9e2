"""`rtcc demo` (what `make run` starts): a worker, replays of the four sample data sets, and
a live view of what the pipeline does with them. Ctrl-C stops everything it started.

It also starts the partner gateway and registers a demo operator partner, and prints the
dashboard's address with its key.

The view is a rate-limited tail of the SA updates (the operators' live picture) and, every
few seconds, a summary of counts read from the worker's own /metrics page, so what is shown
is what the worker measured, not what the demo assumes.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from streams.config import Settings, load
from streams.processes import label, scrape_metrics, start_gateway, start_worker, stop
from agents.ingest.progress import is_mark
from streams.tail import messages, render

PROFILES = ("milwaukee_pd_cfs", "sf_fire_cfs", "nyc_311", "toronto_persons_in_crisis")
SUMMARY_EVERY_S = 5.0
MAX_LINES_PER_S = 4


def _rtcc(*args: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", *args]


def _wait_for_worker(settings: Settings, worker: subprocess.Popen, log: Path) -> bool:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            print(f"demo: the worker exited ({worker.returncode}); its log: {log}")
            return False
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/healthz", timeout=2)
            return True
        except OSError:
            time.sleep(0.5)
    print(f"demo: the worker did not answer within 120 s; its log: {log}")
    return False


def summary_line(counts: dict[str, dict[str, float]]) -> str:
    def per(metric: str, key: str) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for labels, value in counts.get(metric, {}).items():
            out[label(labels, key) or "?"] += int(value)
        return out

    read = per("rtcc_events_in_total", "source")
    ok = per("rtcc_events_normalised_total", "source")
    dead = per("rtcc_events_dead_lettered_total", "source")
    reasons = per("rtcc_events_dead_lettered_total", "reason")
    parts = [f"{s}: {read.get(s, 0)} in / {ok.get(s, 0)} ok / {dead.get(s, 0)} dead"
             for s in ("cad", "crisis", "community")]
    updates = per("rtcc_sa_updates_total", "kind")
    if updates:
        parts.append("SA updates: " + ", ".join(f"{k} {n}" for k, n in sorted(updates.items())))
    top = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:3])
    return "== " + " | ".join(parts) + (f" | dead letters: {top}" if top else "")


def _live_view(settings: Settings, done: threading.Event) -> None:
    shown_this_second, second = 0, int(time.monotonic())
    for partition, offset, doc in messages(settings, settings.topic("rtcc.sa.updates"),
                                           from_beginning=False, idle_timeout_s=None):
        if done.is_set():
            return
        if is_mark(doc):
            continue
        now = int(time.monotonic())
        if now != second:
            second, shown_this_second = now, 0
        if shown_this_second >= MAX_LINES_PER_S:
            continue
        shown_this_second += 1
        print(f"   {render(doc)}", flush=True)


def _register_demo_partners(settings: Settings) -> None:
    """A fresh key for the demo's operator dashboard and a community partner, each run."""
    from streams.gateway.partners_admin import add

    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    _record, operator_key = add(settings, "demo-operator", "operator", name="Demo RTCC floor")
    _record, community_key = add(settings, "demo-community", "community",
                                 name="Demo neighbourhood watch")
    print(f"demo: operator dashboard  {base}/dashboard#key={operator_key}")
    print(f"demo: community view      {base}/dashboard#key={community_key}")
    print(f"demo: SSE, for example    curl -N -H 'Authorization: Bearer {community_key}' "
          f"{base}/v1/stream")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    # `kill` or a process manager stops the demo like Ctrl-C: children are stopped too.
    signal.signal(signal.SIGTERM, _interrupt)
    settings = load()
    log_dir = settings.data_dir.parent / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    worker_log = log_dir / "worker.log"
    children: list[subprocess.Popen] = []
    view_done = threading.Event()

    def stop_all() -> None:
        view_done.set()
        for child in reversed(children):
            stop(child)

    try:
        worker = start_worker(settings, worker_log)
        children.append(worker)
        print(f"demo: worker starting (log: {worker_log}) ...", flush=True)
        if not _wait_for_worker(settings, worker, worker_log):
            return 1
        print(f"demo: worker up; metrics at http://127.0.0.1:{settings.web_port}/metrics")
        children.append(start_gateway(settings, log_dir / "gateway.log"))
        _register_demo_partners(settings)
        # Every data set starts at one common moment, 30 days ago, and plays at one speed,
        # so the four feeds move through event time together as live feeds would.
        start = (datetime.now(timezone.utc) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        for profile in PROFILES:
            replay_log = log_dir / f"replay-{profile}.log"
            cmd = ["replay", profile, "--speed", str(args.speed), "--time-shift", start]
            if args.limit:
                cmd += ["--limit", str(args.limit)]
            with replay_log.open("ab") as out:
                children.append(subprocess.Popen(_rtcc(*cmd), stdout=out, stderr=subprocess.STDOUT))
            print(f"demo: replaying {profile} at {args.speed:g}x from {start} (log: {replay_log})")
        print("demo: live SA updates (a sample, at most "
              f"{MAX_LINES_PER_S}/s) and a summary every {SUMMARY_EVERY_S:.0f} s; Ctrl-C stops\n",
              flush=True)
        threading.Thread(target=_live_view, args=(settings, view_done), daemon=True).start()
        while worker.poll() is None:
            time.sleep(SUMMARY_EVERY_S)
            try:
                print(summary_line(scrape_metrics(settings.web_port, timeout_s=2)), flush=True)
            except OSError as exc:
                print(f"== worker metrics unavailable: {exc}", flush=True)
        print(f"demo: the worker stopped ({worker.returncode}); see {worker_log}")
        return 1
    except KeyboardInterrupt:
        print("\ndemo: stopping the replays and the worker ...", flush=True)
        return 0
    finally:
        stop_all()
