"""Ingest agents: one per source topic; decode, validate, normalise, forward or dead-letter.

The agents only move data: the decisions are in agents.ingest.normalise. Source topics are
read as raw bytes so that a message the codec cannot read still reaches the dead-letter
topic byte for byte, instead of being skipped by Faust's decoder.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import faust

from agents.ingest.dead_letters import dead_letter, unexpected
from agents.ingest.normalise import IngestPolicy, Origin, ghosts, ingest
from agents.ingest.progress import MARK_KEY, SourceProgress
from agents.ingest.rejection import Rejected
from streams import channels, lag, metrics
from streams.app import app, settings, topic
from streams.topics import NORMALISED, SOURCE_TOPICS, partitions_of

log = logging.getLogger(__name__)

policy = IngestPolicy.from_settings(settings)

progress = SourceProgress(started_wall=time.time())
SOURCE_TOPIC_NAMES = {settings.topic(spec.name) for spec in SOURCE_TOPICS.values()}


async def process(source: str, message: faust.types.Message) -> None:
    """Ingest one source message: it ends normalised or dead-lettered, never dropped."""
    origin = Origin(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )
    metrics.EVENTS_IN.labels(source).inc()
    metrics.SOURCE_LAST_EVENT.labels(source).set(time.time())
    started = time.perf_counter()
    event_ts: float | None = None
    try:
        event = ingest(source, message.value, policy, origin)
        await channels.normalised.send(key=event.area_key, value=event)
        for ghost in ghosts(event, policy):
            await channels.normalised.send(key=ghost.area_key, value=ghost)
            metrics.GHOSTS.labels(source).inc()
        event_ts = datetime.fromisoformat(event.event_time).timestamp()
    except Rejected as rejected:
        await _dead_letter(source, rejected, origin, message)
        return
    except Exception as exc:  # a bug must not stop the feed: dead-letter and tell
        log.exception("ingest.%s: unexpected error", source, extra=_context(source, origin))
        await _dead_letter(source, unexpected(exc), origin, message)
        return
    finally:
        # After the event's sends, so that no progress mark can overtake the event.
        progress.observe(f"{origin.topic}:{origin.partition}", event_ts, time.time(),
                         origin.offset)
        metrics.STAGE_SECONDS.labels(f"ingest.{source}").observe(time.perf_counter() - started)
    metrics.EVENTS_NORMALISED.labels(source, event.category).inc()


def _context(source: str, origin: Origin, **more: object) -> dict[str, object]:
    """Fields of a structured log line (streams/logs.py): where the message came from."""
    return {"source": source, "topic": origin.topic, "partition": origin.partition,
            "offset": origin.offset, **more}


async def _dead_letter(source: str, rejected: Rejected, origin: Origin,
                       message: faust.types.Message) -> None:
    record = dead_letter(rejected, f"ingest.{source}", origin, message.key, message.value)
    await channels.dead_letters.send(key=message.key, value=record)
    metrics.EVENTS_DEAD_LETTERED.labels(source, rejected.reason).inc()
    log.info("ingest.%s: dead-lettered %s[%d]@%d: %s %s", source, origin.topic,
             origin.partition, origin.offset, rejected.reason, rejected.field or "",
             extra=_context(source, origin, reason=rejected.reason))


def _ingest_agent(source: str) -> None:
    source_topic = topic(SOURCE_TOPICS[source], key_serializer="raw", value_serializer="raw")

    async def ingest_source(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await process(source, event.message)
            lag.processed(event.message)

    app.agent(source_topic, name=f"ingest.{source}")(ingest_source)


for _source in SOURCE_TOPICS:
    _ingest_agent(_source)


@app.timer(interval=settings.mark_interval_s)
async def send_progress_marks() -> None:
    """Tell every correlation partition how far each source partition read here has got."""
    highwaters = {f"{tp.topic}:{tp.partition}": app.consumer.highwater(tp)
                  for tp in app.consumer.assignment() if tp.topic in SOURCE_TOPIC_NAMES}
    if not highwaters:
        return
    marks = progress.marks(highwaters, time.time())
    for partition in range(partitions_of(NORMALISED, settings)):
        for mark in marks:
            await channels.normalised.send(key=MARK_KEY, value=mark, partition=partition)
