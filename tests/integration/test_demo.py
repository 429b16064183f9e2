"""`make run` (`rtcc demo`): it shows the live picture, and stopping it stops what it started."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from streams import admin
from streams.config import REPO_ROOT, load
from streams.processes import free_port, scrape_metrics

pytestmark = pytest.mark.integration


def _answers(port: int) -> bool:
    try:
        scrape_metrics(port, timeout_s=2)
        return True
    except OSError:
        return False


@pytest.mark.timeout(300)
def test_demo_shows_events_and_sigterm_stops_it_and_its_children(services, shared_data,
                                                                  tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:6]
    settings = dataclasses.replace(
        load(), kafka_bootstrap=services.kafka_bootstrap, redis_url=services.redis_url,
        app_id=f"rtcc-demo-{run}", topic_prefix=f"demo.{run}.", topic_partitions=1,
        data_dir=tmp_path / "data", table_store="memory://", web_port=free_port(),
        gateway_port=free_port(), shared_data_dir=shared_data)
    admin.create_topics(settings)
    demo = subprocess.Popen([sys.executable, "-m", "streams.cli", "demo", "--limit", "300"],
                            env=settings.as_env(), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 180
        assert demo.stdout is not None
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("== cad: ") and not line.startswith("== cad: 0 in"):
                break
        assert any(x.startswith("== cad: ") and not x.startswith("== cad: 0 in")
                   for x in lines), "".join(lines[-30:])
        assert _answers(settings.web_port)  # the worker it started
        demo.send_signal(signal.SIGTERM)  # as a process manager stops it
        out, _ = demo.communicate(timeout=120)
        lines.append(out)
    finally:
        if demo.poll() is None:
            demo.kill()
        admin.delete_topics(settings, [n for n in admin.list_topics(settings)
                                       if n.startswith(settings.topic_prefix)
                                       or n.startswith(settings.app_id)])
    text = "".join(lines)
    assert demo.returncode == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert not _answers(settings.web_port), "the demo's worker outlived it"
