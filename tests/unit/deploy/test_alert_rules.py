"""deploy/prometheus: the alert rules, their promtool tests, the Prometheus config and the
runbook agree with each other and with the metrics the worker exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.required import unavailable

REPO_ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RUNBOOK = PROMETHEUS_DIR / "RUNBOOK.md"
RUNBOOK_URL = "https://github.com/rtcc-streams/rtcc-streams/blob/main/deploy/prometheus/RUNBOOK.md"



def exposed_metrics() -> dict[str, str]:
    """{exposed name: type} of every metric of streams/metrics.py (worker and gateway):
    counters with their _total. An alert or panel on any other name would never fire."""
    from streams import metrics

    found = {}
    for value in vars(metrics).values():
        if hasattr(value, "_name") and getattr(value, "_type", None) in (
                "counter", "gauge", "histogram"):
            name = value._name + ("_total" if value._type == "counter" else "")
            found[name] = value._type
    return found


WORKER_METRICS = set(exposed_metrics())
HISTOGRAMS = {name for name, kind in exposed_metrics().items() if kind == "histogram"}
SEVERITIES = {"critical", "warning"}


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        unavailable("promtool is not installed (apt-get install prometheus)")
    return subprocess.run([binary, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True,
                          timeout=120)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    doc = yaml.safe_load(ALERTS.read_text())
    groups = {group["name"]: group for group in doc["groups"]}
    assert set(groups) == {"rtcc"}
    return [rule for rule in groups["rtcc"]["rules"] if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    anchors, fenced = set(), False
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^#{1,6}\s+(.+?)\s*#*$", line)):
            anchors.add(github_anchor(match.group(1)))
    return anchors


# ------------------------------------------------------------------------------ promtool


def test_promtool_check_rules():
    assert_ok(promtool("check", "rules", str(ALERTS)))


def test_promtool_test_rules():
    assert_ok(promtool("test", "rules", str(ALERT_TESTS)))


@pytest.mark.parametrize("config", [CONFIG, PROMETHEUS_DIR / "prometheus.docker.yml"],
                         ids=["local", "docker-compose"])
def test_promtool_check_config(config):
    result = promtool("check", "config", str(config))
    assert_ok(result)
    assert "1 rule files found" in result.stdout + result.stderr


def test_prometheus_config_scrapes_the_worker_and_the_gateway():
    from streams.config import Settings

    defaults = Settings()
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "rtcc-worker"]
    assert job["scrape_interval"] == "5s"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:6066"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "rtcc-gateway"]
    assert job["static_configs"][0]["targets"] == [f"127.0.0.1:{defaults.gateway_port}"]
    docker = yaml.safe_load((PROMETHEUS_DIR / "prometheus.docker.yml").read_text())
    (job,) = [j for j in docker["scrape_configs"] if j["job_name"] == "rtcc-gateway"]
    assert job["static_configs"][0]["targets"] == ["gateway:8080"]


def test_alerts_select_the_scrape_jobs_that_exist(rules):
    jobs = {j["job_name"] for j in yaml.safe_load(CONFIG.read_text())["scrape_configs"]}
    for rule in rules:
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs, f"{rule['alert']}: no scrape job {job}"


# ------------------------------------------------------------------------------ the rules


def test_the_expected_alerts_exist(rules):
    assert {rule["alert"] for rule in rules} == {
        "RtccSourceFeedSilent", "RtccConsumerLagGrowing", "RtccDeadLetterRateHigh",
        "RtccEndToEndLatencyHigh", "RtccWorkerDown", "RtccProduceFailures",
        "RtccRedisBacklogGrowing", "RtccRedisWriteErrors", "RtccGatewayDown",
        "RtccAuditWriteFailures",
    }


def test_every_alert_has_severity_summary_description_and_runbook(rules):
    anchors = runbook_anchors()
    for rule in rules:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            assert str(annotations.get(key, "")).strip(), f"{name}: no {key}"
        url = annotations["runbook_url"]
        assert url == f"{RUNBOOK_URL}#{name.lower()}", f"{name}: runbook_url {url}"
        assert url.split("#", 1)[1] in anchors, f"{name}: no heading for {url} in RUNBOOK.md"


def test_runbook_internal_links_resolve():
    anchors = runbook_anchors()
    for target in re.findall(r"\]\(#([^)]+)\)", RUNBOOK.read_text()):
        assert target in anchors, f"RUNBOOK.md links to #{target}, which is no heading"


def test_alerts_use_only_metrics_the_worker_exposes(rules):
    for rule in rules:
        for name in set(re.findall(r"\brtcc_[a-z0-9_]+", rule["expr"])):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in WORKER_METRICS or (name != base and base in HISTOGRAMS), (
                f"{rule['alert']}: {name} is not a metric of the worker")


def test_every_alert_is_tested_firing_and_not_firing(rules):
    fires, silent = set(), set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            expected = check.get("exp_alerts") or []
            if expected:
                assert all(alert.get("exp_labels") and alert.get("exp_annotations")
                           for alert in expected), case["name"]
                fires.add(check["alertname"])
            else:
                silent.add(check["alertname"])
    names = {rule["alert"] for rule in rules}
    assert names - fires == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested not firing"


def test_latency_objective_is_a_bucket_boundary(rules):
    """histogram_quantile interpolates linearly inside a bucket: the p99 is exact at the
    threshold only if the threshold is a bucket boundary. With a wide bucket around it
    (60-300 s) a normal busy hour, every update at 61-65 s, reads as p99 ~ 297 s."""
    (rule,) = [r for r in rules if r["alert"] == "RtccEndToEndLatencyHigh"]
    threshold = float(re.search(r">\s*([0-9.]+)\s*$", rule["expr"].strip()).group(1))
    from streams import metrics

    bounds = sorted(float(sample.labels["le"])
                    for sample in metrics.END_TO_END_SECONDS.collect()[0].samples
                    if sample.name.endswith("_bucket"))
    assert threshold in bounds, (f"rtcc_end_to_end_seconds buckets {bounds} lack the "
                                 f"alert's objective {threshold:g} s (streams/metrics.py)")
