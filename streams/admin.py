"""Topic administration with kafka-python: create every topic the app uses, idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.config import Settings
from streams.topics import ALL_TOPICS, TopicSpec, partitions_of


@dataclass(frozen=True)
class TopicOutcome:
    name: str
    action: str  # "created" | "exists" | "exists-differs"
    detail: str = ""


def _admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        client_id=f"{settings.app_id}-admin",
        request_timeout_ms=30_000,
    )


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
