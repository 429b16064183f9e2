"""Prometheus metrics of the pipeline. Labels are bounded sets: never ids or keys.

RTCC_METRICS_ENABLED=false swaps every metric below for a no-op of the same name, type and
labels (the call sites do not change): only to measure what the metrics cost
(bench/metrics_overhead.py). Read once, at import.
"""

from __future__ import annotations

from typing import Any

import prometheus_client
from prometheus_client import disable_created_metrics

from streams.config import Settings

# The *_created series double the exposition for no use on dashboards or alerts.
disable_created_metrics()


def _enabled() -> bool:
    """RTCC_METRICS_ENABLED, parsed as Settings does, without loading every setting."""
    return bool(Settings.__dataclass_fields__["metrics_enabled"].default_factory())  # type: ignore[misc]


ENABLED = _enabled()


class _NoOpMetric:
    """A metric that records nothing and is not registered: labels() returns itself."""

    _type = "untyped"

    def __init__(self, name: str, documentation: str, labelnames: Any = (),
                 **kwargs: Any) -> None:
        if self._type == "counter" and name.endswith("_total"):
            name = name[:-len("_total")]  # as prometheus_client keeps a counter's name
        self._name, self._documentation = name, documentation
        self._labelnames = tuple(labelnames)

    def labels(self, *values: Any, **kwvalues: Any) -> _NoOpMetric:
        return self

    def remove(self, *values: Any) -> None:
        pass

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


class _NoOpCounter(_NoOpMetric):
    _type = "counter"


class _NoOpGauge(_NoOpMetric):
    _type = "gauge"


class _NoOpHistogram(_NoOpMetric):
    _type = "histogram"


if ENABLED:
    Counter, Gauge, Histogram = (
        prometheus_client.Counter, prometheus_client.Gauge, prometheus_client.Histogram)
else:
    Counter, Gauge, Histogram = _NoOpCounter, _NoOpGauge, _NoOpHistogram  # type: ignore[misc]

EVENTS_IN = Counter(
    "rtcc_events_in_total", "Messages read from a source topic.", ["source"])
EVENTS_NORMALISED = Counter(
    "rtcc_events_normalised_total", "Source messages accepted and normalised.",
    ["source", "category"])
EVENTS_DEAD_LETTERED = Counter(
    "rtcc_events_dead_lettered_total", "Messages sent to the dead-letter topic.",
    ["source", "reason"])
STAGE_SECONDS = Histogram(
    "rtcc_stage_seconds", "Processing time of one message in a pipeline stage.", ["stage"],
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25))
SA_UPDATES = Counter(
    "rtcc_sa_updates_total", "SA updates published.", ["subject_kind", "kind"])
CORRELATED = Counter(
    "rtcc_correlation_events_total",
    "Normalised events applied by correlation, by what became of them: published (part of "
    "an SA update) or a named, deliberate suppression.", ["disposition"])
MERGES = Counter("rtcc_merges_total", "Duplicate calls merged into a primary incident.")
LINKS = Counter("rtcc_links_total", "Reports and crisis events linked to incidents.", ["type"])
LATE_EVENTS = Counter(
    "rtcc_events_late_total", "Events that arrived behind the watermark (applied at once).")
BUFFERED = Gauge(
    "rtcc_correlation_buffered_events", "Events held for event-time order.", ["partition"])
KPI_INCIDENTS = Counter(
    "rtcc_kpi_incidents_total", "Closed incidents given to the response-time measures, by "
    "outcome (added, late, late_dropped, replaced, unchanged, unplaceable, processing_error).", ["outcome"])
KPI_RECORDS = Counter("rtcc_kpi_records_total", "Windowed response-time records published.")
RESPONSE_SECONDS = Histogram(
    "rtcc_response_seconds", "Response times of closed incidents, from the call's receipt to "
    "a step (dispatched, on_scene), per agency, district and priority: the domain measure "
    "on-call sees next to the KPI topic's windows.", ["agency", "district", "priority", "step"],
    buckets=(30, 60, 120, 180, 300, 420, 600, 900, 1200, 1800, 3600, 7200))
GHOSTS = Counter(
    "rtcc_events_ghosted_total", "Ghost copies of events near an area border sent to the "
    "neighbouring area.", ["source"])
CHECKPOINTS = Counter(
    "rtcc_checkpoints_total", "Checkpoints of a stateful stage (agents/checkpoint.py), by way "
    "written: beside the stage, or in its turn (RTCC_CHECKPOINT_BESIDE; with auto, in_turn "
    "means the stage was catching up on a backlog).", ["stage", "way"])
TABLE_KEYS = Gauge("rtcc_table_keys",
                   "Keys held in a state table by this worker, as of its last checkpoint.",
                   ["table"])
TABLE_STORE_BYTES = Gauge(
    "rtcc_table_store_bytes", "Memory RocksDB holds for a state table on this worker, read "
    "from RocksDB at each scrape, by kind (memtables, block_cache, table_readers): the part "
    "of the worker's RSS that its settings (RTCC_ROCKSDB_*) bound.", ["table", "kind"])
END_TO_END_SECONDS = Histogram(
    "rtcc_end_to_end_seconds",
    "From a source event's arrival in its Kafka topic to the SA update it caused.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 75, 90, 120, 300))
SOURCE_LAST_EVENT = Gauge(
    "rtcc_source_last_event_timestamp_seconds",
    "Unix time at which this worker last read a message of the source: a silent CAD feed "
    "looks like a quiet night.", ["source"])
CONSUMER_LAG = Gauge(
    "rtcc_consumer_lag_messages", "Messages in a partition not yet processed by this worker.",
    ["topic", "partition"])
HOTSPOTS_OPEN = Gauge("rtcc_hotspots_open", "Hotspots open now on this worker's partitions.")
PRODUCE_FAILURES = Counter(
    "rtcc_produce_failures_total", "Records the producer gave up on (retries and delivery "
    "timeout spent): an SA update, normalised event, KPI record or table changelog record "
    "missing downstream although its input was processed.", ["topic"])

# --- partners: publication, serving, gateway, audit --------------------------------------
AUDIENCE_UPDATES = Counter(
    "rtcc_audience_updates_total", "SA updates per audience by outcome: sent, withdrawn, "
    "aggregated, or a named suppression (subject_not_shared, not_flagged, "
    "sensitive_withheld, unchanged_for_audience).", ["audience", "outcome"])
REDIS_WRITES = Counter(
    "rtcc_redis_writes_total", "Audience updates applied to Redis by the serving sink.",
    ["audience"])
REDIS_WRITE_ERRORS = Counter(
    "rtcc_redis_write_errors_total", "Failed Redis round trips of the serving sink "
    "(retried: nothing is skipped).", ["audience"])
REDIS_BACKLOG = Gauge(
    "rtcc_redis_backlog_messages", "Audience-topic messages not yet in Redis.", ["audience"])
GATEWAY_CONNECTIONS = Gauge(
    "rtcc_gateway_connections", "Open SSE and WebSocket connections.", ["audience", "protocol"])
GATEWAY_REQUESTS = Counter(
    "rtcc_gateway_requests_total", "Gateway requests by endpoint and HTTP status.",
    ["endpoint", "status"])
GATEWAY_DELIVERED = Counter(
    "rtcc_gateway_updates_delivered_total", "Updates delivered to partners.",
    ["audience", "protocol"])
GATEWAY_RATE_LIMITED = Counter(
    "rtcc_gateway_updates_coalesced_total", "Updates replaced by a newer one of the same "
    "subject within a partner's minimum interval.", ["audience"])
GATEWAY_DELIVERY_SECONDS = Histogram(
    "rtcc_gateway_delivery_seconds",
    "From an update's publication on Kafka to its delivery to a partner connection.",
    ["protocol"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
AUDIT_RECORDS = Counter(
    "rtcc_audit_records_total", "Audit records written.", ["action", "outcome"])
AUDIT_WRITE_FAILURES = Counter(
    "rtcc_audit_write_failures_total", "Audit records that could not be written to Kafka.")
