"""Ingest agents: one per source topic; decode, validate, normalise, forward or dead-letter.

The agents only move data: the decisions are in agents.ingest.normalise. Source topics are
read as raw bytes so that a message the codec cannot read still reaches the dead-letter
topic byte for byte, instead of being skipped by Faust's decoder.
"""

from __future__ import annotations

import logging
import time

import faust

from agents.ingest.dead_letters import dead_letter, unexpected
from agents.ingest.geo import ServiceAreas
from agents.ingest.normalise import IngestPolicy, Origin, ingest
from agents.ingest.rejection import Rejected
from agents.ingest.taxonomy import Taxonomy
from streams import metrics
from streams.app import app, settings, topic
from streams.topics import DEAD_LETTER, NORMALISED, SOURCE_TOPICS

log = logging.getLogger(__name__)

policy = IngestPolicy(
    areas=ServiceAreas.load(settings.service_areas_file),
    taxonomy=Taxonomy.load(settings.taxonomy_file),
    min_event_year=settings.min_event_year,
    max_clock_skew_s=settings.max_clock_skew_s,
    max_message_bytes=settings.max_message_bytes,
    cell_resolution=settings.hotspot_cell_resolution,
    partition_resolution=settings.partition_cell_resolution,
)

normalised_topic = topic(NORMALISED, key_type=str, value_serializer="orjson")
dead_letter_topic = topic(DEAD_LETTER, value_serializer="orjson")


async def process(source: str, message: faust.types.Message) -> None:
    """Ingest one source message: it ends normalised or dead-lettered, never dropped."""
    origin = Origin(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )
    metrics.EVENTS_IN.labels(source).inc()
    started = time.perf_counter()
    try:
        event = ingest(source, message.value, policy, origin)
        await normalised_topic.send(key=event.area_key, value=event)
    except Rejected as rejected:
        await _dead_letter(source, rejected, origin, message)
        return
    except Exception as exc:  # a bug must not stop the feed: dead-letter and tell
        log.exception("ingest.%s: unexpected error at %s[%d]@%d", source, origin.topic,
                      origin.partition, origin.offset)
        await _dead_letter(source, unexpected(exc), origin, message)
        return
    finally:
        metrics.INGEST_SECONDS.labels(f"ingest.{source}").observe(time.perf_counter() - started)
    metrics.EVENTS_NORMALISED.labels(source, event.category).inc()


async def _dead_letter(source: str, rejected: Rejected, origin: Origin,
                       message: faust.types.Message) -> None:
    record = dead_letter(rejected, f"ingest.{source}", origin, message.key, message.value)
    await dead_letter_topic.send(key=message.key, value=record)
    metrics.EVENTS_DEAD_LETTERED.labels(source, rejected.reason).inc()
    log.info("ingest.%s: dead-lettered %s[%d]@%d: %s %s", source, origin.topic,
             origin.partition, origin.offset, rejected.reason, rejected.field or "")


def _ingest_agent(source: str) -> None:
    source_topic = topic(SOURCE_TOPICS[source], key_serializer="raw", value_serializer="raw")

    async def ingest_source(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await process(source, event.message)

    app.agent(source_topic, name=f"ingest.{source}")(ingest_source)


for _source in SOURCE_TOPICS:
    _ingest_agent(_source)
