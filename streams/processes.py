"""Start and stop `rtcc` worker processes: for the demo, the tests and the benchmarks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streams.config import REPO_ROOT, Settings


def start_worker(settings: Settings, log: Path) -> subprocess.Popen:
    """A `rtcc worker` process that loads exactly these settings, its output in `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"],
                                env=settings.as_env(), cwd=REPO_ROOT, stdout=out,
                                stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM (Faust shuts down cleanly), then SIGKILL if it does not go in time."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
