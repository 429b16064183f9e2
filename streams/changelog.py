"""Table changelog records sent in one go at a checkpoint, not one Faust future each.

A Faust table sends every write to its changelog through `send_soon`: a FutureMessage per
record, queued and produced one at a time by a background task, sensors on the way out,
and a callback per record that writes the changelog partition's persisted offset into
RocksDB. A checkpoint writes ~1,000-2,000 keys at 500 events/s, and that path ran after
every checkpoint, beside the ingest agent: one worker's ingest part had a p99 of ~170 ms at
500 events/s against ~30 ms in a worker of its own (bench/NOTES.md, section 21).

`DeferredChangelogTable` serialises each record as Faust would and leaves it in the app's
`ChangelogOutbox`; the checkpoint that wrote the keys hands the outbox to the producer
before it acks the events behind them, and records each changelog partition's persisted
offset once, when its last record is written. Faust's commit flushes the producer first,
so no offset is committed before the changelog records of its state. Only checkpoints
write these tables (agents/checkpoint.py).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import faust

from agents.batching import Outbox


class ChangelogOutbox:
    """Changelog records waiting for the checkpoint that wrote them: the agents' `Outbox`
    (serialised now, handed to the producer in order, failed sends counted), plus which
    table each changelog topic belongs to, for its persisted offset."""

    def __init__(self, app: faust.App) -> None:
        self.messages = Outbox(app)
        self.tables: dict[str, faust.Table] = {}  # changelog topic -> its table
        # Two stages' checkpoints share the outbox: one acks only once the records of its
        # writes are in the producer, also when the other's send took them.
        self.sending = asyncio.Lock()

    def add(self, table: faust.Table, partition: int, key: Any, value: Any,
            value_serializer: Any) -> None:
        """Serialise a write of `table` as Faust's `send_changelog` would."""
        topic = table.changelog_topic
        self.tables.setdefault(topic.get_topic_name(), table)
        self.messages.add(topic, key, value, partition, key_serializer=table.key_serializer,
                          value_serializer=value_serializer)

    async def send(self) -> int:
        """Hand every record to the producer, in order; return how many."""
        async with self.sending:
            runs = await self.messages.send()
        last = {(topic, p): fut for topic, p, fut, _ in runs}  # a partition's complete in order
        for (topic, _), fut in last.items():
            fut.add_done_callback(partial(_persisted, self.tables[topic]))
        return sum(records for *_, records in runs)


def _persisted(table: faust.Table, sent: asyncio.Future) -> None:
    """What Faust's per-record callback does, for a partition's last record only: on
    recovery the store then reads the changelog from after this offset. (A failed send is
    counted and logged by `Outbox`; its offset is not persisted.)"""
    if not sent.cancelled() and sent.exception() is None:
        metadata = sent.result()
        table.data.set_persisted_offset(metadata.topic_partition, metadata.offset)


class DeferredChangelogTable(faust.Table):
    """A Faust table whose changelog records wait in `app.changelog` (see above)."""

    def _outbox(self) -> ChangelogOutbox | None:
        """The app's outbox; None in a plain faust.App (Faust's own path then)."""
        return getattr(self.app, "changelog", None)

    def on_key_set(self, key: Any, value: Any) -> None:
        outbox = self._outbox()
        if outbox is None:
            return super().on_key_set(key, value)
        partition = self._defer(outbox, key, value, self.value_serializer)
        self._maybe_set_key_ttl(key, partition)
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        outbox = self._outbox()
        if outbox is None:
            return super().on_key_del(key)
        partition = self._defer(outbox, key, None, "raw")
        self._maybe_del_key_ttl(key, partition)
        self._sensor_on_del(self, key)

    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        """Faust's check that the changelog has the source topic's partitions, except
        while the consumer's metadata does not show the changelog yet (0 partitions):
        Faust created it at start-up, and a first checkpoint soon after a fresh deployment
        found it missing from the metadata, took that for a mismatch and crashed the
        agent. Not a mismatch: checked again at the next write."""
        if self.app.consumer.topic_partitions(self.changelog_topic_name) == 0:
            return
        super()._verify_source_topic_partitions(source_topic)

    def _defer(self, outbox: ChangelogOutbox, key: Any, value: Any,
               value_serializer: Any) -> int:
        partition = self.partition_for_key(key)  # the current event's: see current_event
        if partition is None:
            raise RuntimeError(f"{self.name}: a changelog record needs its partition")
        outbox.add(self, partition, key, value, value_serializer)
        return partition
