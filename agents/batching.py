"""What the agents share to handle events in batches instead of one at a time.

Faust's cost per message dominates this pipeline (bench/NOTES.md): each `await
topic.send()` builds a FutureMessage, runs sensors and serialises through the codec chain,
and each table write is a store write plus a changelog message. The agents therefore read
`stream.take_events(n, within)` batches, work out every output of the batch first
(`Outbox`, serialised as Faust would), and hand them to the producer in order at the end
of the batch, straight into aiokafka's open Kafka batches (streams/producing.py).

Delivery stays at-least-once: a batch's events are acked only once the loop body has
returned (its outputs are then in the producer), and before it commits offsets the
consumer flushes the producer (faust/transport/consumer.py, `_commit_offsets`:
`await self.app.producer.flush()`), so no offset is committed before the outputs of the
events below it are written. Order is kept: outputs go to the producer in the order they
were produced, through one path, so messages with the same key (or partition) keep it.

`batches` is how agents read: Faust's `take_events` acks a batch in a `finally`, so a
body interrupted by SIGTERM (the agent task is cancelled mid-batch, while it awaits the
producer) had its events acked anyway when the abandoned generator was finalised, and the
shutdown commit then skipped work that never happened (bench/chaos.py, graceful restart:
an incident's "opened" update lost). `batches` holds one extra reference on each message
while the body runs and drops it only when the body completes, so an interrupted batch
stays unacked, is not committed, and is read again by whoever owns the partition next.
(A body that *raises* in a running worker leaves its batch unacked too; Faust's supervisor
restarts the agent on the following messages. Faust's commit stops at the first unacked
offset of a partition, except that its gap check (`Consumer._new_offset`) lets a single
unacked message right at the committed offset through: the agents' bodies catch each
event's errors themselves and dead-letter it, so only a failure of the producer path
itself gets there.)
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import faust
from faust.streams import _current_event

from streams import metrics, producing

log = logging.getLogger(__name__)


def _count_failure(topic: str, records: int, fut: asyncio.Future) -> None:
    """Records the producer gave up on are output lost although their input was processed
    (their offsets may be committed by then): counted, so that on-call is paged
    (RtccProduceFailures), and logged. A future stands for `records` records of one Kafka
    batch (streams/producing.py), which fail together."""
    if not fut.cancelled() and fut.exception() is not None:
        metrics.PRODUCE_FAILURES.labels(topic).inc(records)
        log.error("send of %d record(s) to %s failed: %r", records, topic, fut.exception())


class Outbox:
    """Serialised messages waiting to be handed to the producer, in order; and for a
    compacted topic (`add_latest`), only each key's last message of the batch."""

    __slots__ = ("app", "messages", "latest")

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.messages: list[tuple[str, Any, Any, int | None, Any]] = []
        self.latest: dict[tuple[str, Any], tuple[str, Any, Any, int | None, Any]] = {}

    def add(self, topic: faust.TopicT, key: Any, value: Any, partition: int | None = None,
            key_serializer: Any = None, value_serializer: Any = None,
            headers: list[tuple[str, bytes]] | None = None) -> tuple[Any, Any]:
        """Serialise now (a value the codec refuses fails here, in the caller's try), the
        same way `topic.send(key=key, value=value)` does (the topic's codecs unless given).
        Returns the key's and the value's bytes."""
        key_bytes, _ = topic.prepare_key(key, key_serializer)
        value_bytes, _ = topic.prepare_value(value, value_serializer)
        self.messages.append((topic.get_topic_name(), key_bytes, value_bytes, partition,
                              headers))
        return key_bytes, value_bytes

    def add_latest(self, topic: str, key: bytes, value: bytes | None) -> None:
        """A message, already serialised, to the named compacted topic, replacing the key's
        earlier one of this batch.

        Compaction keeps only a key's last value, so the ones before it in a batch would be
        written only to be compacted away (`rtcc.sa.state`: a hotspot's close and its
        tombstone come together). Sent after the batch's ordered messages; a key keeps its
        place among the others. A value of None is a tombstone (a record with no value, so
        that compaction forgets the key). Held until the checkpoint instead, a subject's
        records would merge over a second: ~10 % fewer records on a backlog, but a longer
        tail at live rates (bench/NOTES.md section 36)."""
        self.latest[(topic, key)] = (topic, key, value, None, None)

    def __len__(self) -> int:
        return len(self.messages) + len(self.latest)

    async def send(self) -> list[producing.Run]:
        """Hand every message to the producer (its accumulator; not waiting for the broker).
        Returns the runs of records handed over, in order: topic, partition, the delivery
        future of the run's last record, and how many records the run holds."""
        messages, self.messages = self.messages, []
        if self.latest:
            messages += self.latest.values()
            self.latest = {}
        producer = self.app.producer
        kafka = getattr(producer, "_producer", None)  # Faust's aiokafka driver, started
        if kafka is not None and producing.supported(kafka):
            runs = await producing.append_all(kafka, messages)
        else:  # another transport: one record at a time
            runs = [(topic, partition, await producer.send(topic, key, value, partition, None,
                                                           headers), 1)
                    for topic, key, value, partition, headers in messages]
        for topic, _, fut, records in runs:
            fut.add_done_callback(partial(_count_failure, topic, records))
        return runs


async def batches(stream: faust.StreamT, max_: int,
                  within: float) -> AsyncIterator[Sequence[faust.types.EventT]]:
    """`stream.take_events(max_, within)`, acking a batch only if the body completed."""
    async for events in stream.take_events(max_, within=within):
        for event in events:
            event.message.incref()  # held until the body is done with the batch
        yield events
        # Reached only when the caller asks for the next batch: the body completed. An
        # exception or a cancellation leaves the reference held: never acked, never committed.
        for event in events:
            event.message.decref()


@contextmanager
def current_event(event: faust.types.EventT) -> Iterator[None]:
    """Make `event` Faust's current event while a batch's table writes are flushed: a
    table sends each change to the changelog partition of the current event, which must be
    the partition the state belongs to."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
