"""docker-compose.yml is valid and agrees with the app's configuration."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from streams.config import REPO_ROOT, Settings, load
from streams.topics import ALL_TOPICS
from tests.required import unavailable


@pytest.fixture(scope="module")
def compose() -> dict:
    """The file as docker-compose itself resolves it (anchors, defaults, validation)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        unavailable("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run([binary, "-f", str(REPO_ROOT / "docker-compose.yml"), "config"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_stack_has_the_services(compose):
    assert {"kafka", "redis", "topics", "worker", "gateway"} <= set(compose["services"])
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")


def test_environment_names_are_settings_of_the_app(compose):
    known = {env for env, _, _ in Settings.documented()}
    for name in ("topics", "worker", "gateway"):
        env = _env(compose["services"][name])
        unknown = {k for k in env if k.startswith("RTCC_")} - known
        assert not unknown, f"{name} sets variables the app does not read: {unknown}"
        assert "RTCC_KAFKA_BOOTSTRAP" in env and "RTCC_REDIS_URL" in env


def test_worker_reaches_the_brokers_internal_listener(compose):
    bootstrap = _env(compose["services"]["worker"])["RTCC_KAFKA_BOOTSTRAP"]
    kafka_env = _env(compose["services"]["kafka"])
    assert bootstrap in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from `rtcc`
    assert kafka_env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"


def _container_port(port: object) -> int:
    if isinstance(port, dict):
        return int(port["target"])
    return int(str(port).split("/")[0].rsplit(":", 1)[-1])


def test_ports_match_the_settings(compose, monkeypatch):
    worker = compose["services"]["worker"]
    port = int(_env(worker)["RTCC_WEB_PORT"])
    assert port in {_container_port(p) for p in worker.get("ports", [])}
    monkeypatch.delenv("RTCC_WEB_PORT", raising=False)
    assert load().web_port == port  # the same port as a worker outside Docker


def test_topics_job_creates_the_apps_topics(compose):
    topics = compose["services"]["topics"]
    assert topics["command"] == ["rtcc", "topics", "create"]
    # The job runs the app's own topic list; the worker waits for it to complete.
    assert ALL_TOPICS
    assert compose["services"]["worker"]["depends_on"]["topics"]["condition"] == \
        "service_completed_successfully"


def test_prometheus_and_grafana_are_provisioned(compose):
    services = compose["services"]
    prometheus = " ".join(services["prometheus"]["command"])
    assert "prometheus.docker.yml" in prometheus
    mounts = " ".join(str(v.get("source", v)) if isinstance(v, dict) else v
                      for v in services["grafana"].get("volumes", []))
    assert "deploy/grafana/provisioning" in mounts and "deploy/grafana/dashboards" in mounts
    docker_config = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.docker.yml").read_text())
    targets = docker_config["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"worker:{_env(services['worker'])['RTCC_WEB_PORT']}"]


def test_gateway_service(compose, monkeypatch):
    """`rtcc gateway` in its own container, on all interfaces, scraped by Prometheus."""
    services = compose["services"]
    gateway = services["gateway"]
    assert gateway["command"] == ["rtcc", "gateway"]
    env = _env(gateway)
    assert env["RTCC_GATEWAY_HOST"] == "0.0.0.0"
    assert env["RTCC_KAFKA_BOOTSTRAP"] == _env(services["worker"])["RTCC_KAFKA_BOOTSTRAP"]
    port = int(env["RTCC_GATEWAY_PORT"])
    assert port == 8080 and port in {_container_port(p) for p in gateway.get("ports", [])}
    monkeypatch.delenv("RTCC_GATEWAY_PORT", raising=False)
    assert load().gateway_port == port  # the same port as a gateway outside Docker
    assert gateway["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    docker_config = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.docker.yml").read_text())
    (job,) = [j for j in docker_config["scrape_configs"] if j["job_name"] == "rtcc-gateway"]
    assert job["static_configs"][0]["targets"] == [f"gateway:{port}"]
