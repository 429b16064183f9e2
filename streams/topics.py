"""Every Kafka topic the app uses, with its partitions, retention and cleanup policy.

One table of specs feeds both `rtcc topics create` and the Faust topic objects, so the
topics an operator creates are exactly those the workers read and write.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.partitioner import murmur2

from streams.config import Settings

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str  # without the deployment prefix
    doc: str
    retention_ms: int = 7 * DAY_MS
    cleanup_policy: str = "delete"
    partitions: int | None = None  # None: the deployment's RTCC_TOPIC_PARTITIONS

    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        if self.cleanup_policy == "compact":
            # Latest state per key is kept forever; tombstones of closed subjects go after a day.
            cfg["retention.ms"] = "-1"
            cfg["delete.retention.ms"] = str(DAY_MS)
            cfg["min.compaction.lag.ms"] = str(60_000)
        return cfg


CAD_EVENTS = TopicSpec("cad.events", "Source: CAD lifecycle events (schemas/json/cad-event).")
CRISIS_EVENTS = TopicSpec("crisis.events", "Source: crisis-team events (crisis-event).")
COMMUNITY_REPORTS = TopicSpec("community.reports", "Source: community reports (community-report).")
NORMALISED = TopicSpec(
    "rtcc.events.normalised",
    "Validated, enriched events of every source, keyed by area (normalised-event).")
DEAD_LETTER = TopicSpec(
    "rtcc.deadletter", "Rejected messages with reason and original bytes (dead-letter).",
    retention_ms=30 * DAY_MS)
SA_UPDATES = TopicSpec("rtcc.sa.updates", "Every SA update, append-only (sa-update).")
SA_STATE = TopicSpec(
    "rtcc.sa.state", "Latest SA update per incident, hotspot and cluster (compacted).",
    cleanup_policy="compact")
KPI = TopicSpec(
    "rtcc.kpi", "Windowed response-time measures per agency, district and priority; a window "
    "revised by late incidents is sent again with revision + 1 (keep the highest).",
    retention_ms=90 * DAY_MS)
FINISHED_INCIDENTS = TopicSpec(
    "rtcc.internal.finished-incidents",
    "Internal: summaries of closed incidents, keyed by agency and district for the KPIs; "
    "a message holds one correlation batch's incidents of its district ({\"incidents\": [...]}).")
AUDIENCES = ("operator", "crisis", "community", "public")
AUDIENCE_TOPICS = tuple(
    TopicSpec(f"rtcc.sa.audience.{a}", f"SA updates redacted for the {a} audience.")
    for a in AUDIENCES
)

PARTNERS = TopicSpec(
    "rtcc.partners", "Partner registry: the latest record per partner id (compacted; API keys "
    "only as hashes). Managed with `rtcc partners`.", cleanup_policy="compact", partitions=1)
AUDIT = TopicSpec(
    "rtcc.audit", "Audit trail of partner actions: connect, subscribe, snapshot, registry "
    "change, denied request (audit-record). Kept a year, as CJIS asks.",
    retention_ms=366 * DAY_MS)

SOURCE_TOPICS = {"cad": CAD_EVENTS, "crisis": CRISIS_EVENTS, "community": COMMUNITY_REPORTS}
ALL_TOPICS: tuple[TopicSpec, ...] = (
    CAD_EVENTS, CRISIS_EVENTS, COMMUNITY_REPORTS, NORMALISED, DEAD_LETTER,
    SA_UPDATES, SA_STATE, KPI, FINISHED_INCIDENTS, *AUDIENCE_TOPICS, PARTNERS, AUDIT,
)


def audience_topic(audience: str) -> TopicSpec:
    return next(spec for spec in AUDIENCE_TOPICS if spec.name.endswith(f".{audience}"))


def partitions_of(spec: TopicSpec, settings: Settings) -> int:
    return spec.partitions or settings.topic_partitions


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of a keyed record under Kafka's default partitioner (murmur2, the same
    in aiokafka's producer and Java's), which places the normalised events by area."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
