"""Ingest agents: one per source topic; decode, validate, normalise, forward or dead-letter.

The agents only move data: the decisions are in agents.ingest.normalise. Source topics are
read as raw bytes so that a message the codec cannot read still reaches the dead-letter
topic byte for byte, instead of being skipped by Faust's decoder.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import datetime

import faust

from agents.batching import Outbox, batches
from agents.ingest.dead_letters import dead_letter, dead_letter_key, unexpected
from agents.ingest.normalise import IngestPolicy, Origin, ghosts, ingest
from agents.ingest.progress import MARK_KEY, MarkCarrier, SourceProgress, released
from agents.ingest.rejection import Rejected
from schemas import records
from streams import channels, lag, metrics
from streams.app import app, settings, topic
from streams.topics import NORMALISED, SOURCE_TOPICS, partition_for, partitions_of

log = logging.getLogger(__name__)

policy = IngestPolicy.from_settings(settings)

progress = SourceProgress(started_wall=time.time())
SOURCE_TOPIC_NAMES = {settings.topic(spec.name) for spec in SOURCE_TOPICS.values()}
_NORMALISED_PARTITIONS = partitions_of(NORMALISED, settings)


@functools.lru_cache(maxsize=4096)  # areas are coarse cells of the service areas: few
def normalised_partition(area_key: str) -> int:
    """The partition of the normalised topic for an area (its key), as Kafka's default
    partitioner places it. Events and ghosts are sent there explicitly, so that the choice
    of which ghosts to send and where they go cannot disagree."""
    return partition_for(channels.normalised.prepare_key(area_key, None)[0],
                         _NORMALISED_PARTITIONS)


def process(source: str, message: faust.types.Message, out: Outbox,
            observed: list[tuple[str, float | None, float, int]],
            carrier: MarkCarrier | None = None) -> None:
    """Ingest one source message: it ends normalised or dead-lettered, never dropped. Its
    outputs go to `out`, serialised; how far its partition has got goes to `observed`, to
    be recorded once they are in the producer. `carrier`: the batch's progress mark, for
    the first message to each normalised partition."""
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
        for copy in (event, *ghosts(event, policy, normalised_partition)):
            partition = normalised_partition(copy.area_key)
            out.add(channels.normalised, copy.area_key, records.dumps(copy), partition,
                    value_serializer="raw",
                    headers=carrier.headers_for(partition) if carrier else None)
            if copy is not event:
                metrics.GHOSTS.labels(source).inc()
        event_ts = datetime.fromisoformat(event.event_time).timestamp()
    except Rejected as rejected:
        _dead_letter(source, rejected, origin, message, out)
        return
    except Exception as exc:  # a bug must not stop the feed: dead-letter and tell
        log.exception("ingest.%s: unexpected error", source, extra=_context(source, origin))
        _dead_letter(source, unexpected(exc), origin, message, out)
        return
    finally:
        observed.append((f"{origin.topic}:{origin.partition}", event_ts, time.time(),
                         origin.offset))
        metrics.STAGE_SECONDS.labels(f"ingest.{source}").observe(time.perf_counter() - started)
    metrics.EVENTS_NORMALISED.labels(source, event.category).inc()


def _context(source: str, origin: Origin, **more: object) -> dict[str, object]:
    """Fields of a structured log line (streams/logs.py): where the message came from."""
    return {"source": source, "topic": origin.topic, "partition": origin.partition,
            "offset": origin.offset, **more}


def _dead_letter(source: str, rejected: Rejected, origin: Origin,
                 message: faust.types.Message, out: Outbox) -> None:
    record = dead_letter(rejected, f"ingest.{source}", origin, message.key, message.value)
    out.add(channels.dead_letters, dead_letter_key(message.key), record)
    metrics.EVENTS_DEAD_LETTERED.labels(source, rejected.reason).inc()
    log.info("ingest.%s: dead-lettered %s[%d]@%d: %s %s", source, origin.topic,
             origin.partition, origin.offset, rejected.reason, rejected.field or "",
             extra=_context(source, origin, reason=rejected.reason))


def _ingest_agent(source: str) -> None:
    source_topic = topic(SOURCE_TOPICS[source], key_serializer="raw", value_serializer="raw")

    async def ingest_source(stream: faust.StreamT) -> None:
        out = Outbox(app)
        observed: list[tuple[str, float | None, float, int]] = []
        async for events in batches(stream, settings.batch_max, settings.batch_within_s):
            mark = current_mark()  # before the batch: it covers only events sent already
            carrier = MarkCarrier(mark) if mark is not None else None
            for event in events:
                process(source, event.message, out, observed, carrier)
                lag.processed(event.message)
            await out.send()
            # Only now, so that no progress mark can overtake the events it covers.
            for origin, ts, wall, offset in observed:
                progress.observe(origin, ts, wall, offset)
            observed.clear()

    app.agent(source_topic, name=f"ingest.{source}")(ingest_source)


for _source in SOURCE_TOPICS:
    _ingest_agent(_source)


def _polled_at(tp: faust.types.TP) -> float | None:
    """Wall time of the fetch that last refreshed `tp`'s highwater (aiokafka's
    `last_poll_timestamp`, taken when the fetch request was made), None when unknown."""
    try:
        ms = app.consumer._thread._ensure_consumer().last_poll_timestamp(tp)
    except Exception:  # noqa: BLE001 (another transport, or not started): claim nothing
        return None
    return ms / 1000.0 if ms else None


# Source partitions this worker has stopped reading and said so (`release`): no mark of
# this worker speaks for them again until they are assigned here anew.
_released: set[str] = set()
RELEASE_TIMEOUT_S = 10.0  # a rebalance waits for it; the broker may be the trouble


def _origin(tp: faust.types.TP) -> str:
    return f"{tp.topic}:{tp.partition}"


def current_mark() -> dict | None:
    """How far each source partition read here has got, now, as one mark message; None
    while none is assigned."""
    assigned = [tp for tp in app.consumer.assignment()
                if tp.topic in SOURCE_TOPIC_NAMES and _origin(tp) not in _released]
    if not assigned:
        return None
    # Faust keeps the group's committed offset per partition (set when it seeks there on
    # assignment, and at each commit); there is no public accessor for it.
    committed = getattr(app.consumer, "_committed_offset", {})
    origin = _origin
    # The fetch times before the highwaters: a fetch landing in between then pairs an older
    # time with a newer highwater, which claims less than it could, never more.
    polled = {origin(tp): _polled_at(tp) for tp in assigned}
    return progress.marks({origin(tp): app.consumer.highwater(tp) for tp in assigned},
                          time.time(), {origin(tp): committed.get(tp) for tp in assigned},
                          polled)


@app.timer(interval=settings.mark_interval_s)
async def send_progress_marks() -> None:
    """Tell every correlation partition how far each source partition read here has got,
    also when no events flow to carry it (agents/ingest/progress.py)."""
    mark = current_mark()
    if mark is None:
        return
    out = Outbox(app)  # the events' path to the producer: a mark stays behind them
    for partition in range(partitions_of(NORMALISED, settings)):
        out.add(channels.normalised, MARK_KEY, mark, partition)
    await out.send()


async def release(origins: set[str]) -> None:
    """Tell every correlation partition that these source partitions are no longer read
    here (agents/ingest/progress.py, `released`), and wait until Kafka has it: it must be
    there before their next owner reads on. From now on this worker's marks leave them
    out; the ones it wrote earlier are older than this, and superseded by it."""
    origins = origins - _released
    if not origins:
        return
    _released.update(origins)
    mark = released(sorted(origins), time.time())
    out = Outbox(app)
    for partition in range(partitions_of(NORMALISED, settings)):
        out.add(channels.normalised, MARK_KEY, mark, partition)
    try:
        runs = await out.send()
        await asyncio.wait_for(asyncio.gather(*(fut for _, _, fut, _ in runs)),
                               RELEASE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 (a broker away: its marks stop, which says it too)
        log.warning("ingest: could not release %s: %r", ", ".join(sorted(origins)), exc)
        return
    log.info("ingest: released %d source partition(s) to their next owner: %s", len(origins),
             ", ".join(sorted(origins)))


async def hand_over(partitions: set | None) -> None:
    """Before a rebalance takes these partitions away (None: before shutdown, all of them),
    ahead of the wait for the messages in flight (streams/app.py): until the release is
    written this worker's last marks speak for them, and a quiet partition's new records
    go unread (bench/NOTES.md, section 42). A killed worker says nothing; its origins hold
    again once its marks stop (agents/correlate/ordering.py)."""
    if partitions is None:
        try:
            partitions = set(app.consumer.assignment())
        except Exception:  # noqa: BLE001 (stopped before it started: nothing read here)
            return
    await release({_origin(tp) for tp in partitions if tp.topic in SOURCE_TOPIC_NAMES})


app.on_hand_over.append(hand_over)


@app.on_partitions_assigned.connect
async def take_assigned(app: faust.App, assigned: set, **kwargs: object) -> None:
    _released.difference_update(_origin(tp) for tp in assigned)
