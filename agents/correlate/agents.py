"""Correlation agent: normalised events -> one live picture -> SA updates.

Thin: per partition of the normalised topic it keeps a watermark, a reorder buffer and a
correlation engine (agents/correlate/*.py, all pure), and it moves what they return to the
SA topics. State lives in Faust tables (RocksDB + changelog in production), namespaced by
partition so that each key is always written to its own partition's changelog; the
watermark's view of every origin is part of it, so that a partition's next owner carries on
in the same event-time order.

Events are handled in batches (RTCC_BATCH_MAX, RTCC_BATCH_WITHIN_S; agents/batching.py),
and each batch's SA updates are handed to the producer in order at its end, with its closed
incidents for the KPI stage gathered by agency and district (`send_finished`); the compacted
live picture (`rtcc.sa.state`) gets each subject's last update of the batch, or its
tombstone once it is forgotten (`Outbox.add_latest`). The engine works on write-behind
views of the tables, whose keys reach the table (and its changelog) once per checkpoint
(RTCC_CHECKPOINT_S; agents/checkpoint.py), which also acks the events.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import faust

from agents.batching import Outbox, batches
from agents.checkpoint import Checkpoint
from agents.correlate import ordering
from agents.correlate.engine import CorrelationConfig, Correlator, Result
from agents.correlate.hotspots import HotspotTracker
from agents.correlate.matching import MatchRules
from agents.correlate.ordering import ReorderBuffer, Watermarks, event_ts, origin_of
from agents.correlate.write_behind import WriteBehind
from agents.failures import dead_letter_failure
from agents.ingest.progress import carried_mark, is_mark, origin_marks
from streams import channels, lag, metrics
from streams.app import app, settings, state_table
from streams.tables import PartitionView
from streams.topics import NORMALISED, SOURCE_TOPICS, partitions_of

log = logging.getLogger(__name__)


_table_partitions = partitions_of(NORMALISED, settings)
incidents_table = state_table("correlate-incidents", _table_partitions)
groups_table = state_table("correlate-groups", _table_partitions)
pending_table = state_table("correlate-pending", _table_partitions)
hotspots_table = state_table("correlate-hotspots", _table_partitions)
# How far the partition's ordering has got (agents/correlate/ordering.py, `progress`).
progress_table = state_table("correlate-progress", _table_partitions)
PROGRESS_KEY = "ordering"
# PartitionState.views, in this order (the progress last: PartitionState.flush).
TABLES = (pending_table, incidents_table, groups_table, hotspots_table, progress_table)

CONFIG = CorrelationConfig(
    rules=MatchRules(
        duplicate_radius_m=settings.duplicate_radius_m,
        duplicate_window_s=settings.duplicate_window_s,
        report_radius_m=settings.report_radius_m,
        report_window_s=settings.report_window_s,
    ),
    cell_resolution=settings.hotspot_cell_resolution,
    incident_ttl_s=settings.incident_ttl_s,
    cluster_min_reports=settings.cluster_min_reports,
    cluster_window_s=settings.cluster_window_s,
)
EXPECTED_ORIGINS = [
    f"{settings.topic(spec.name)}:{p}"
    for spec in SOURCE_TOPICS.values() for p in range(partitions_of(spec, settings))
]


@dataclass
class PartitionState:
    watermarks: Watermarks
    buffer: ReorderBuffer
    engine: Correlator
    finished: list[dict[str, Any]]  # closed incidents of this batch, for the KPI stage
    views: tuple[WriteBehind, ...]  # the tables as the engine sees them, flushed at checkpoints

    def detach(self) -> tuple[WriteBehind, ...]:
        """The partition's state as of now, set aside for a checkpoint to write: the views'
        pending writes, with how far its ordering has got (the progress table, last)."""
        progress = self.views[-1]  # of progress_table
        progress[PROGRESS_KEY] = ordering.progress(self.watermarks, self.buffer)
        return tuple(view.detach() for view in self.views)


partitions: dict[int, PartitionState] = {}


def state_of(partition: int) -> PartitionState:
    """This worker's correlation state of a partition, restored from the tables on first use."""
    state = partitions.get(partition)
    if state is None:
        views = tuple(WriteBehind(PartitionView(table, partition), mirror=True)
                      for table in TABLES)
        pending, incidents, groups, hotspots, progress = views
        buffer = ReorderBuffer(pending)
        buffer.restore(list(pending.values()))
        watermarks = Watermarks(lateness_s=settings.lateness_s, idle_s=settings.idle_s,
                                expected=EXPECTED_ORIGINS, live_window_s=settings.live_window_s)
        record = progress.get(PROGRESS_KEY)
        if record is not None:  # as of the last checkpoint; none for a partition's first use
            ordering.resume(record, watermarks, buffer)
        finished: list[dict[str, Any]] = []
        engine = Correlator(incidents, groups, CONFIG, on_finished=finished.append,
                            hotspots=HotspotTracker(hotspots))
        engine.restore()
        state = PartitionState(watermarks, buffer, engine, finished, views)
        partitions[partition] = state
        log.info("correlate: partition %d restored: %d pending, watermark %s, %s", partition,
                 len(buffer), watermarks.current(), engine.size())
    return state


@app.on_partitions_revoked.connect
async def forget_revoked(app: faust.App, revoked: set, **kwargs: Any) -> None:
    """A revoked partition's state may change elsewhere: rebuild it from the table if it
    returns. Its buffered-events gauge goes too: the new owner reports the partition."""
    for tp in revoked:
        if tp.topic == channels.normalised.get_topic_name():
            partitions.pop(tp.partition, None)
            try:
                metrics.BUFFERED.remove(str(tp.partition))
            except KeyError:  # no event of it handled here yet
                pass


def publish(result: Result, out: Outbox) -> None:
    """Every update to `rtcc.sa.updates`, and the same bytes (both topics: raw keys, orjson
    values; serialised once) to the live picture, which keeps a subject's last of the batch."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    state_topic = channels.sa_state.get_topic_name()
    for update in result.updates:
        update["published_time"] = now
        out.add_latest(state_topic, *out.add(channels.sa_updates, update["subject_id"], update))
        metrics.SA_UPDATES.labels(update["subject_kind"], update["kind"]).inc()
    for subject in result.tombstones:
        out.add_latest(state_topic, channels.sa_state.prepare_key(subject, None)[0], None)
    for disposition in result.dispositions:
        metrics.CORRELATED.labels(disposition).inc()
    if result.merges:
        metrics.MERGES.inc(result.merges)
    for kind, n in result.links.items():
        metrics.LINKS.labels(kind).inc(n)


# Closed incidents in one message of the KPI topic at most: ~400 bytes each, well under
# Kafka's 1 MB message size however large RTCC_BATCH_MAX is.
FINISHED_PER_MESSAGE = 200


def send_finished(out: Outbox) -> None:
    """The batch's closed incidents to the KPI stage, one message per agency and district
    (`{"incidents": [...]}`, agents/correlate/kpi_agent.py) instead of one per incident:
    nearly every event closes one, and the KPI stage's read of each message is Faust's
    per-message path (bench/NOTES.md section 23)."""
    by_district: dict[str, list[dict[str, Any]]] = {}
    for state in partitions.values():
        for summary in state.finished:
            key = f"{summary['agency_id']}/{summary.get('district') or 'unknown'}"
            by_district.setdefault(key, []).append(summary)
        state.finished.clear()
    for key, summaries in by_district.items():
        for start in range(0, len(summaries), FINISHED_PER_MESSAGE):
            out.add(channels.finished_incidents, key,
                    {"incidents": summaries[start:start + FINISHED_PER_MESSAGE]})


def _observe_latency(event: dict[str, Any], result: Result) -> Result:
    """End-to-end latency of the updates an event caused: from its source message's arrival
    in Kafka to now, their publication."""
    arrived_ms = event.get("source_timestamp_ms")
    if arrived_ms is not None and result.updates:
        latency = time.time() - arrived_ms / 1000.0
        for _ in result.updates:
            metrics.END_TO_END_SECONDS.observe(latency)
    return result


def observe_marks(watermarks: Watermarks, doc: dict[str, Any]) -> None:
    for mark in origin_marks(doc):
        watermarks.observe_mark(mark["origin"], mark.get("max_ts"), mark.get("last_event_wall"),
                                mark["wall"], mark.get("caught_up", True),
                                mark.get("caught_up_wall"), mark.get("read_wall"))


def handle(partition: int, doc: dict[str, Any], out: Outbox,
           carried: dict[str, Any] | None = None) -> None:
    """One message of the normalised topic. `carried`: the progress mark in its headers,
    written before it (agents/ingest/progress.py), so observed first."""
    state = state_of(partition)
    started = time.perf_counter()
    if carried is not None:
        observe_marks(state.watermarks, carried)
    if is_mark(doc):
        observe_marks(state.watermarks, doc)
    else:
        ts = event_ts(doc)
        state.watermarks.observe_event(origin_of(doc), ts)
        if not state.buffer.push(doc, ts):
            metrics.LATE_EVENTS.inc()
            publish(_observe_latency(doc, state.engine.apply(doc)), out)
    released = state.buffer.release(state.watermarks.current())
    for event in released:
        publish(_observe_latency(event, state.engine.apply(event)), out)
    if released:
        publish(state.engine.advance(state.buffer.released_ts), out)
    metrics.BUFFERED.labels(str(partition)).set(len(state.buffer))
    metrics.STAGE_SECONDS.labels("correlate").observe(time.perf_counter() - started)


@app.timer(interval=5.0)
async def measure_tables() -> None:
    """State size per table: it must stay bounded as event time passes.

    Counted in the engines' mirrors of their partitions, as of the last checkpoint (a
    partition counts from its first event after it was assigned here): `len()` of a RocksDB
    table reads every key, 3.5 % of a worker's CPU with 26,000 hotspot keys.
    """
    for i, table in enumerate(TABLES):
        metrics.TABLE_KEYS.labels(table.name).set(
            sum(state.views[i].stored_count() for state in partitions.values()))
    metrics.HOTSPOTS_OPEN.set(sum(len(state.engine.hotspots.open_hotspots())
                                  for state in partitions.values() if state.engine.hotspots))


def detach_partition(partition: int) -> tuple[WriteBehind, ...]:
    state = partitions.get(partition)
    return () if state is None else state.detach()


checkpoint = Checkpoint.for_stage(app, settings, "correlate", detach_partition)


@app.agent(channels.normalised, name="correlate")
async def correlate(stream: faust.StreamT) -> None:
    out = Outbox(app)
    async for events in batches(stream, settings.batch_max, settings.batch_within_s):
        # The state of these events reaches the tables, and their acks Faust, at the next
        # checkpoint, after their updates are in Kafka (agents/checkpoint.py).
        async with checkpoint.batch(events):
            for event in events:
                if event.value is None:
                    continue
                try:
                    handle(event.message.partition, event.value, out,
                           carried_mark(event.message.headers))
                except Exception as exc:  # one bad event must not stop the picture
                    metrics.CORRELATED.labels("processing_error").inc()
                    dead_letter_failure("correlate", event, exc, out)
                lag.processed(event.message)
            send_finished(out)
            await out.send()
