"""Kafka with SASL/SCRAM: the worker and the admin log in with credentials, and without them
fail fast with a message that says why, instead of hanging.

A second, separate broker that only takes SCRAM logins is started on free ports in a
temporary directory (`deploy/local/infra.sh sasl-up`, the same jars and code path as the
PLAINTEXT broker) and stopped at the end; the shared broker on 9092 is not touched. The
test user's password is made up here and handed over in a file, as a deployment would
mount a secret. Also: a Redis that requires a password, reached through
RTCC_REDIS_PASSWORD_FILE.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams import admin
from streams.config import REPO_ROOT, Settings, load
from streams.processes import free_port, start_worker, stop
from streams.security import client_options
from tests.integration.conftest import running_worker, unavailable, wait_for
from tests.samples import MKE_CALL

INFRA = REPO_ROOT / "deploy/local/infra.sh"
FAIL_WITHIN_S = 90  # a refused login must end the process well before this: no hang


@dataclass(frozen=True)
class SaslBroker:
    bootstrap: str
    username: str
    password: str
    password_file: Path


def _need_java() -> None:
    if shutil.which("java") is None:
        unavailable("java not found: the SASL broker cannot run")


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    _need_java()
    root = tmp_path_factory.mktemp("sasl")
    username, password = "rtcc-it", secrets.token_urlsafe(24)
    password_file = root / "kafka.password"
    password_file.write_text(password + "\n")  # a trailing newline, as secret files often have
    password_file.chmod(0o600)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RTCC_KAFKA_PASSWORD"}
    env.update(RTCC_SASL_DIR=str(root / "broker"), RTCC_SASL_PORT=str(port),
               RTCC_SASL_CONTROLLER_PORT=str(free_port()), RTCC_KAFKA_USERNAME=username,
               RTCC_KAFKA_PASSWORD_FILE=str(password_file))
    up = subprocess.run(["bash", str(INFRA), "sasl-up"], env=env, capture_output=True,
                        text=True, timeout=300)
    try:
        assert up.returncode == 0, f"sasl-up failed:\n{up.stdout}\n{up.stderr}"
        yield SaslBroker(f"127.0.0.1:{port}", username, password, password_file)
    finally:
        down = subprocess.run(["bash", str(INFRA), "sasl-down"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert down.returncode == 0, down.stderr


def _settings(broker: SaslBroker, tmp_path: Path, **changes: object) -> Settings:
    """An isolated deployment on the SASL broker, logging in with the password file."""
    run = uuid.uuid4().hex[:8]
    values: dict[str, object] = dict(
        kafka_bootstrap=broker.bootstrap, kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_username=broker.username,
        kafka_password="", kafka_password_file=str(broker.password_file),
        app_id=f"rtcc-sasl-{run}", topic_prefix=f"sasl.{run}.", topic_partitions=1,
        data_dir=tmp_path / "worker", table_store="memory://", stages="ingest",
        web_port=free_port())
    return dataclasses.replace(load(), **{**values, **changes})


def test_with_credentials_the_worker_processes_a_message(sasl_broker: SaslBroker,
                                                         tmp_path: Path) -> None:
    settings = _settings(sasl_broker, tmp_path)
    outcomes = admin.create_topics(settings)
    assert {o.action for o in outcomes} == {"created"}
    try:
        with running_worker(settings, tmp_path / "worker.log") as worker:
            producer = KafkaProducer(bootstrap_servers=[settings.kafka_bootstrap],
                                     **client_options(settings))
            producer.send(settings.topic("cad.events"), orjson.dumps(MKE_CALL), key=b"k")
            producer.flush(timeout=30)
            producer.close()
            assert wait_for(lambda: worker.metric("rtcc_events_normalised_total") >= 1,
                            timeout_s=60), worker.metrics()
        events = _read_all(settings, settings.topic("rtcc.events.normalised"))
        assert [e["event_id"] for e in events if not e.get("ghost")] == ["cad:MPD:1211372"]
        log = (tmp_path / "worker.log").read_text()
        assert sasl_broker.password not in log
    finally:
        admin.delete_topics(settings, [o.name for o in outcomes])


def _read_all(settings: Settings, topic: str) -> list[dict]:
    consumer = KafkaConsumer(bootstrap_servers=[settings.kafka_bootstrap], group_id=None,
                             enable_auto_commit=False, **client_options(settings))
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        out: list[dict] = []
        deadline = time.monotonic() + 30
        while consumer.position(tp) < end and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out += [orjson.loads(r.value) for r in records if r.value is not None]
        return [e for e in out if "event_id" in e]  # progress marks have none
    finally:
        consumer.close()


def test_without_the_right_credentials_it_fails_clearly(sasl_broker: SaslBroker,
                                                        tmp_path: Path) -> None:
    """Each wrong setup ends (non-zero exit) within FAIL_WITHIN_S and says why; all of them
    run at once, as the admin client takes its 30 s bootstrap timeout to give up."""
    wrong_file = tmp_path / "wrong.password"
    wrong_file.write_text("not-the-password")
    setups = {
        "worker, wrong password": (_settings(sasl_broker, tmp_path,
                                             kafka_password_file=str(wrong_file)), "worker",
                                   ["SaslAuthenticationFailed", "invalid credentials"]),
        "worker, no SASL": (_settings(sasl_broker, tmp_path,
                                      kafka_security_protocol="PLAINTEXT"), "worker",
                            ["Unable to bootstrap", "127.0.0.1"]),
        "worker, no password": (_settings(sasl_broker, tmp_path, kafka_password_file=""),
                                "worker", ["needs RTCC_KAFKA_PASSWORD_FILE or RTCC_KAFKA_PASSWORD"]),
        "admin, wrong password": (_settings(sasl_broker, tmp_path,
                                            kafka_password_file=str(wrong_file)), "topics",
                                  ["KafkaUnavailable", "as rtcc-it (SCRAM-SHA-512, a password)",
                                   "Authentication failed"]),
        "admin, no SASL": (_settings(sasl_broker, tmp_path, kafka_security_protocol="PLAINTEXT"),
                           "topics", ["KafkaUnavailable", "over PLAINTEXT"]),
    }
    running: dict[str, tuple[subprocess.Popen, Path, list[str]]] = {}
    for name, (settings, command, expected) in setups.items():
        log = tmp_path / f"{name.replace(', ', '-').replace(' ', '_')}.log"
        if command == "worker":
            process = start_worker(settings, log)
        else:
            with log.open("wb") as out:
                process = subprocess.Popen([sys.executable, "-m", "streams.cli", "topics", "list"],
                                           env=settings.as_env(), cwd=REPO_ROOT, stdout=out,
                                           stderr=subprocess.STDOUT)
        running[name] = (process, log, expected)
    deadline = time.monotonic() + FAIL_WITHIN_S
    try:
        for name, (process, log, expected) in running.items():
            try:
                code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name}: still running after {FAIL_WITHIN_S} s (a hang):\n"
                            f"{log.read_text()[-2000:]}")
            text = log.read_text()
            assert code != 0, f"{name}: exited 0\n{text[-2000:]}"
            for words in expected:
                assert words in text, f"{name}: {words!r} not said:\n{text[-3000:]}"
            assert sasl_broker.password not in text, f"{name} printed the password"
    finally:
        for process, _, _ in running.values():
            stop(process, timeout_s=5)


def test_redis_password_comes_from_a_file(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """RTCC_REDIS_PASSWORD_FILE puts the password into the URL every Redis client is made
    from; without it the server refuses. A Redis of its own, on a free port."""
    import redis

    if shutil.which("redis-server") is None:
        unavailable("redis-server not found")
    password = secrets.token_urlsafe(24)
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", password],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        secret = tmp_path / "redis.password"
        secret.write_text(password + "\n")
        url = f"redis://127.0.0.1:{port}/0"
        settings = dataclasses.replace(load(), redis_url=url, redis_password_file=str(secret))
        assert wait_for(lambda: _pings(settings.redis_url), timeout_s=10)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(url).ping()
        for name, value in settings.as_env({}).items():  # what `rtcc config` would read
            monkeypatch.setenv(name, value)
        shown = {env: value for env, _, value in Settings.documented()}
        assert password not in str(shown) and ":***@" in shown["RTCC_REDIS_URL"]
    finally:
        stop(server, timeout_s=10)


def _pings(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False
