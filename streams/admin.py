"""Topic administration with kafka-python: create every topic the app uses, idempotently."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

import streams.kafka_python_fix  # noqa: F401  (a refused login's answer is not lost)
from streams.config import Settings
from streams.security import client_options, describe
from streams.topics import ALL_TOPICS, TopicSpec, partitions_of


@dataclass(frozen=True)
class TopicOutcome:
    name: str
    action: str  # "created" | "exists" | "exists-differs"
    detail: str = ""


class KafkaUnavailable(RuntimeError):
    """No usable connection to Kafka: unreachable, or the credentials were refused."""


def _admin(settings: Settings) -> KafkaAdminClient:
    """An admin client with the deployment's credentials. kafka-python retries a refused
    login until its bootstrap timeout and then only says it could not bootstrap: the reason
    it logged on the way (e.g. SaslAuthenticationFailedError) is put into the error."""
    options = client_options(settings)  # a bad security setting fails here, by name
    seen = _LastProblem()
    kafka_log = logging.getLogger("kafka")
    kafka_log.addHandler(seen)
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap.split(","),
            client_id=f"{settings.app_id}-admin",
            request_timeout_ms=30_000,
            **options,
        )
    except KafkaError as exc:
        cause = seen.last or f"{type(exc).__name__}: {exc}"
        raise KafkaUnavailable(
            f"cannot use Kafka at {describe(settings)}: {cause}. Check RTCC_KAFKA_BOOTSTRAP, "
            "RTCC_KAFKA_SECURITY_PROTOCOL and the credentials (README, Security)") from None
    finally:
        kafka_log.removeHandler(seen)


class _LastProblem(logging.Handler):
    """Remembers the most telling warning kafka-python logged: a refused login or an untrusted
    certificate beats a lost connection, which beats chatter."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None
        self._rank = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        rank = 2 if ("AuthenticationFailed" in message or "CERTIFICATE_VERIFY_FAILED" in message) \
            else 1 if ("failed" in message or "Error" in message) else 0
        if rank > self._rank:
            self.last, self._rank = message, rank


def create_topics(settings: Settings, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[TopicOutcome]:
    """Create what is missing; report (never alter) existing topics whose layout differs."""
    admin = _admin(settings)
    try:
        existing = _partition_counts(admin)
        outcomes = []
        for spec in specs:
            name = settings.topic(spec.name)
            wanted = partitions_of(spec, settings)
            if name in existing:
                if existing[name] != wanted:
                    outcomes.append(TopicOutcome(
                        name, "exists-differs", f"{existing[name]} partitions, wanted {wanted}"))
                else:
                    outcomes.append(TopicOutcome(name, "exists"))
                continue
            try:
                admin.create_topics([NewTopic(
                    name, num_partitions=wanted, replication_factor=settings.topic_replication,
                    topic_configs=spec.config(),
                )])
                outcomes.append(TopicOutcome(name, "created", f"{wanted} partitions, "
                                             f"{spec.config()['cleanup.policy']}"))
            except TopicAlreadyExistsError:  # created concurrently by another worker
                outcomes.append(TopicOutcome(name, "exists"))
        return outcomes
    finally:
        admin.close()


def delete_topics(settings: Settings, names: list[str]) -> None:
    admin = _admin(settings)
    try:
        present = set(admin.list_topics())
        doomed = [n for n in names if n in present]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()


def _partition_counts(admin: KafkaAdminClient) -> dict[str, int]:
    names = admin.list_topics()
    if not names:
        return {}
    return {t.get("name") or t.get("topic"): len(t["partitions"]) for t in admin.describe_topics(names)}


def list_topics(settings: Settings) -> dict[str, int]:
    admin = _admin(settings)
    try:
        return _partition_counts(admin)
    finally:
        admin.close()
