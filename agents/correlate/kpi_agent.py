"""KPI agent: closed incidents, keyed by agency and district -> windowed response times.

A stage of its own because the correlation stage is partitioned by area, and a district's
incidents come from several areas: re-keying them by (agency, district) brings each
district's window to one aggregator (agents/correlate/kpi.py, pure). A message holds the
district's incidents closed in one correlation batch (`{"incidents": [...]}`), or one
incident's summary as workers before 2026-11-30 wrote it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import faust

from agents.batching import Outbox, batches
from agents.checkpoint import Checkpoint
from agents.correlate.kpi import KpiAggregator
from agents.correlate.write_behind import WriteBehind
from agents.failures import dead_letter_failure
from agents.ingest.times import as_utc
from streams import channels, lag, metrics
from streams.app import app, settings, state_table
from streams.tables import PartitionView
from streams.topics import FINISHED_INCIDENTS, partitions_of


kpi_table = state_table("kpi-windows", partitions_of(FINISHED_INCIDENTS, settings))
aggregators: dict[int, KpiAggregator] = {}
views: dict[int, WriteBehind] = {}  # the table as each aggregator sees it, flushed at checkpoints
watermarks: dict[int, datetime] = {}


def aggregator_of(partition: int) -> KpiAggregator:
    if partition not in aggregators:
        views[partition] = WriteBehind(PartitionView(kpi_table, partition), mirror=True)
        aggregators[partition] = KpiAggregator(views[partition])
    return aggregators[partition]


@app.on_partitions_revoked.connect
async def forget_revoked(app: faust.App, revoked: set, **kwargs: object) -> None:
    for tp in revoked:
        if tp.topic == channels.finished_incidents.get_topic_name():
            aggregators.pop(tp.partition, None)
            views.pop(tp.partition, None)
            watermarks.pop(tp.partition, None)


@app.timer(interval=5.0)
async def measure_table() -> None:
    """Counted in the mirrors, as the correlation tables are (agents/correlate/agents.py)."""
    metrics.TABLE_KEYS.labels(kpi_table.name).set(
        sum(view.stored_count() for view in views.values()))


def detach_partition(partition: int) -> tuple[WriteBehind, ...]:
    view = views.get(partition)
    return () if view is None else (view.detach(),)


checkpoint = Checkpoint.for_stage(app, settings, "kpi", detach_partition)


@app.agent(channels.finished_incidents, name="kpi")
async def measure_response_times(stream: faust.StreamT) -> None:
    out = Outbox(app)
    async for events in batches(stream, settings.batch_max, settings.batch_within_s):
        async with checkpoint.batch(events):  # agents/checkpoint.py
            for event in events:
                take(event, out)
            await out.send()


def incidents_of(value: Any) -> list[Any]:
    """The closed incidents a message of the topic holds, in the order they closed."""
    if isinstance(value, dict) and "subject_id" not in value \
            and isinstance(value.get("incidents"), list):
        return value["incidents"]
    return [value]


def take(event: faust.types.EventT, out: Outbox) -> None:
    """A message of closed incidents. One the stage fails on (a bug: correlate wrote it)
    goes to the dead-letter topic on its own, the others are measured; raising instead
    would leave the batch unacked and restart the agent."""
    for incident in incidents_of(event.value):
        try:
            add(event.message.partition, incident, out)
        except Exception as exc:  # a bug must not stop the measures
            metrics.KPI_INCIDENTS.labels("processing_error").inc()
            dead_letter_failure("kpi", event, exc, out, value=incident)
    lag.processed(event.message)


def add(partition: int, incident: Any, out: Outbox) -> None:
    aggregator = aggregator_of(partition)
    outcome = aggregator.add(incident)
    metrics.KPI_INCIDENTS.labels(outcome).inc()
    if outcome == "added":  # once per incident: a redelivered or revised one is not re-counted
        observe_response_times(incident)
    # Event time of this stage: the latest close seen in the partition. Windows are an
    # hour long, so looking for complete ones once per minute of it is enough.
    closed = datetime.fromisoformat(incident["closed_time"]).replace(second=0)
    if partition in watermarks and closed <= watermarks[partition]:
        return
    watermarks[partition] = closed
    for record in aggregator.advance(closed):
        out.add(channels.kpi, record.kpi_id, record.as_dict())
        metrics.KPI_RECORDS.inc()


def observe_response_times(incident: dict) -> None:
    start = as_utc(incident.get("received_time"))
    if start is None:
        return
    labels = (incident.get("agency_id") or "unknown", str(incident.get("district") or "unknown"),
              str(incident.get("priority") or "unknown"))
    for step in ("dispatched", "on_scene"):
        at = as_utc(incident.get(f"{step}_time"))
        if at is not None:
            seconds = (at - start).total_seconds()
            if seconds >= 0:
                metrics.RESPONSE_SECONDS.labels(*labels, step).observe(seconds)
