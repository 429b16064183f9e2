"""Real Kafka and Redis for integration tests, and a real worker process per test.

Services are found in this order: RTCC_KAFKA_BOOTSTRAP / RTCC_REDIS_URL if set; else
testcontainers when a Docker engine answers; else the local processes of deploy/local
(started if needed). With CI=true a missing service fails the run instead of skipping.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents.ingest.progress import is_mark
from streams import admin
from streams.processes import free_port, scrape_metrics, start_worker, stop
from streams.config import REPO_ROOT, Settings, load
from tests.required import unavailable



@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    redis_url: str


def _answers(host_port: str, timeout: float = 2.0) -> bool:
    host, _, port = host_port.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    env_kafka = os.environ.get("RTCC_KAFKA_BOOTSTRAP")
    env_redis = os.environ.get("RTCC_REDIS_URL")
    if env_kafka and env_redis:
        if not _answers(env_kafka):
            unavailable(f"no Kafka answers at RTCC_KAFKA_BOOTSTRAP={env_kafka}")
        yield Services(env_kafka, env_redis)
        return
    if _docker_engine():
        from tests.integration.containers import kafka_and_redis

        with kafka_and_redis() as (bootstrap, redis_url):
            yield Services(bootstrap, redis_url)
        return
    up = subprocess.run(["bash", str(REPO_ROOT / "deploy/local/infra.sh"), "up"],
                        capture_output=True, text=True, timeout=600)
    if up.returncode != 0:
        unavailable(f"deploy/local/infra.sh up failed:\n{up.stdout}\n{up.stderr}")
    yield Services(env_kafka or "127.0.0.1:9092", env_redis or "redis://127.0.0.1:6379/0")


@pytest.fixture
def settings(services: Services, tmp_path: Path) -> Settings:
    """Settings of an isolated deployment: its own topic prefix, group and state dir."""
    run = uuid.uuid4().hex[:8]
    return dataclasses.replace(
        load(),
        kafka_bootstrap=services.kafka_bootstrap,
        redis_url=services.redis_url,
        app_id=f"rtcc-it-{run}",
        topic_prefix=f"it.{run}.",
        topic_partitions=2,
        data_dir=tmp_path / "worker",
        table_store="memory://",
        idle_s=2.0,  # let the last events of a replay through quickly
    )


@pytest.fixture
def topics(settings: Settings) -> Iterator[Settings]:
    """Create every topic of the test deployment; delete them afterwards."""
    outcomes = admin.create_topics(settings)
    yield settings
    admin.delete_topics(settings, [o.name for o in outcomes])


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    port: int
    log: Path

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a series' samples whose labels include `labels`."""
        samples = scrape_metrics(self.port).get(name, {})
        return sum(value for label_set, value in samples.items()
                   if all(f'{k}="{v}"' in label_set for k, v in labels.items()))


@contextmanager
def running_worker(settings: Settings, log: Path) -> Iterator[WorkerProcess]:
    """A real `rtcc worker` process with these settings, ready to consume."""
    settings = dataclasses.replace(settings, web_port=free_port())
    proc = start_worker(settings, log)
    handle = WorkerProcess(proc, settings.web_port, log)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                handle.metrics()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"worker did not start:\n{log.read_text()[-3000:]}")
        yield handle
    finally:
        stop(proc)
    text = log.read_text()
    assert "Crashed reason=" not in text, f"an agent crashed:\n{text[-3000:]}"
    assert "Traceback" not in text, f"the worker logged an error:\n{text[-3000:]}"


@pytest.fixture
def worker(topics: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    with running_worker(topics, tmp_path / "worker.log") as handle:
        yield handle


def wait_for(condition, timeout_s: float = 120.0, every_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    return condition()


@contextmanager
def group_commits(settings: Settings) -> Iterator[Any]:
    """A consumer of the worker's group that never subscribes: it only reads the group's
    committed offsets (`committed(tp)`) and the topics' ends (`end_offsets`)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                             group_id=settings.app_id, enable_auto_commit=False)
    try:
        yield consumer
    finally:
        consumer.close(autocommit=False)


@contextmanager
def reading_from_start(settings: Settings, topic: str) -> Iterator[tuple[Any, list[Any]]]:
    """A consumer (no group) assigned to every partition of a topic, at its start."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                             enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        yield consumer, tps
    finally:
        consumer.close()


def drain(settings: Settings, topic: str, until: int | Callable[[list[dict]], bool],
          timeout_s: float = 120.0) -> list[dict]:
    """Every message of a topic (progress marks and tombstones skipped), read from the start
    until `until` arrived (a count, or a test of what was read) or time is up."""
    import orjson

    done = until if callable(until) else (lambda read: len(read) >= until)
    with reading_from_start(settings, topic) as (consumer, _):
        out: list[dict] = []
        deadline = time.monotonic() + timeout_s
        while not done(out) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                docs = (orjson.loads(r.value) if r.value is not None else None for r in records)
                out.extend(d for d in docs if d is not None and not is_mark(d))
        return out
