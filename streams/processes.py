"""Start and stop `rtcc` worker processes: for the demo, the tests and the benchmarks."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from collections import defaultdict
from pathlib import Path

from streams.config import REPO_ROOT, Settings


def _start(command: str, settings: Settings, log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "streams.cli", command],
                                env=settings.as_env(), cwd=REPO_ROOT, stdout=out,
                                stderr=subprocess.STDOUT)


def start_worker(settings: Settings, log: Path) -> subprocess.Popen:
    """A `rtcc worker` process that loads exactly these settings, its output in `log`."""
    return _start("worker", settings, log)


def start_gateway(settings: Settings, log: Path) -> subprocess.Popen:
    """A `rtcc gateway` process with these settings (its port: RTCC_GATEWAY_PORT)."""
    return _start("gateway", settings, log)


def stop(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM (Faust shuts down cleanly), then SIGKILL if it does not go in time."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for test and bench servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape_metrics(port: int, timeout_s: float = 5.0) -> dict[str, dict[str, float]]:
    """{metric: {label set: value}} of the rtcc series on a worker's /metrics page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as r:
        text = r.read().decode()
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for line in text.splitlines():
        if line.startswith("rtcc_"):
            sample, _, value = line.rpartition(" ")
            name, _, labels = sample.partition("{")
            series[name][labels.rstrip("}")] = float(value)
    return series


def label(labels: str, key: str) -> str | None:
    """One label's value in a label set as `scrape_metrics` keys it (`a="x",b="y"`)."""
    for part in labels.split(","):
        name, _, value = part.partition("=")
        if name == key:
            return value.strip('"')
    return None
