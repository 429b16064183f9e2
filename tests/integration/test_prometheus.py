"""A real Prometheus scrapes a worker during a replay: the series on-call needs exist and
move, and a CAD feed that stops makes the feed-silence alert go pending."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from streams.config import REPO_ROOT
from streams.processes import free_port
from streams.replay import player
from streams.replay import profile as profiles
from streams.replay.plan import Pacing
from tests.integration.conftest import unavailable, wait_for

ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"


def _feed_silence_rule_for_a_test(seconds: int) -> dict:
    """The shipped RtccSourceFeedSilent rule (CAD), with its threshold and `for` shortened
    so that a test can see it fire: the expression under test is the shipped one."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    for group in groups:
        for rule in group["rules"]:
            if rule.get("alert") == "RtccSourceFeedSilent" and 'source="cad"' in rule["expr"]:
                threshold = [t for t in rule["expr"].replace(">", " > ").split() if t.isdigit()]
                assert threshold, rule["expr"]
                expr = rule["expr"].replace(threshold[-1], str(seconds))
                return {**rule, "expr": expr, "for": "2s"}
    raise AssertionError("RtccSourceFeedSilent for cad not found in alerts.yml")


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> dict:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def value(self, query: str) -> float | None:
        result = self.get("/api/v1/query", query=query)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def alert_state(self, name: str) -> str | None:
        for alert in self.get("/api/v1/alerts")["data"]["alerts"]:
            if alert["labels"].get("alertname") == name:
                return alert["state"]
        return None


@pytest.fixture
def prometheus(worker, tmp_path: Path):
    binary = shutil.which("prometheus")
    if binary is None:
        unavailable("prometheus is not installed (apt-get install prometheus)")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [
        {"name": "rtcc-test", "interval": "1s", "rules": [_feed_silence_rule_for_a_test(8)]}]}))
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "rtcc-worker", "static_configs": [
            {"targets": [f"127.0.0.1:{worker.port}"]}]}],
    }))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    prom = Prometheus(port)
    try:
        assert wait_for(lambda: _ready(prom), timeout_s=60), (tmp_path / "prometheus.log").read_text()
        yield prom
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _ready(prom: Prometheus) -> bool:
    try:
        return prom.value('up{job="rtcc-worker"}') == 1.0
    except OSError:
        return False


def test_prometheus_sees_the_pipeline_and_a_silent_cad_feed(worker, topics, prometheus):
    settings = topics
    prof = profiles.load("milwaukee_pd_cfs")
    replay = threading.Thread(target=player.replay, args=(
        prof, prof.data_path(settings.shared_data_dir), settings.topic("cad.events"),
        settings.kafka_bootstrap,
        player.ReplayOptions(pacing=Pacing("rate", 40.0), limit=400, progress=False)))
    replay.start()

    # the main series exist and move while the replay runs
    assert wait_for(lambda: (prometheus.value('sum(rtcc_events_in_total{source="cad"})') or 0) > 40,
                    timeout_s=60)
    first = prometheus.value('sum(rtcc_events_in_total{source="cad"})')
    assert wait_for(lambda: prometheus.value('sum(rtcc_events_in_total{source="cad"})') > first,
                    timeout_s=30)
    for series in ('sum(rtcc_events_normalised_total)', 'sum(rtcc_sa_updates_total)',
                   'sum(rtcc_correlation_events_total)', 'rtcc_end_to_end_seconds_count',
                   'sum(rtcc_stage_seconds_count)', 'sum(rtcc_consumer_lag_messages)',
                   'rtcc_source_last_event_timestamp_seconds{source="cad"}'):
        assert wait_for(lambda: prometheus.value(series) is not None, timeout_s=30), series
    assert prometheus.alert_state("RtccSourceFeedSilent") is None  # the feed is live

    # the CAD replay stops: the feed-silence alert goes pending, then fires
    replay.join(timeout=120)
    assert not replay.is_alive()
    assert wait_for(lambda: prometheus.alert_state("RtccSourceFeedSilent") in ("pending", "firing"),
                    timeout_s=60), prometheus.get("/api/v1/alerts")
