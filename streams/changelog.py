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
write these tables (agents/checkpoint.py). Under exactly_once (a transaction per commit,
offsets persisted when it commits) Faust's own path is kept.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import faust

log = logging.getLogger(__name__)


@dataclass
class ChangelogOutbox:
    """Serialised changelog records waiting for the checkpoint that wrote them."""

    records: list[tuple[faust.Table, int, bytes, bytes | None]] = field(default_factory=list)
    # Two stages' checkpoints share the outbox: one acks only once the records of its
    # writes are in the producer, also when the other's send took them.
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)

    def add(self, table: faust.Table, partition: int, key: bytes, value: bytes | None) -> None:
        self.records.append((table, partition, key, value))

    def __len__(self) -> int:
        return len(self.records)

    async def send(self, producer: Any) -> int:
        """Hand every record to the producer, in order; return how many."""
        async with self.sending:
            records, self.records = self.records, []
            last: dict[tuple[str, int], tuple[faust.Table, asyncio.Future]] = {}
            for table, partition, key, value in records:
                topic = table.changelog_topic.get_topic_name()
                sent = await producer.send(topic, key, value, partition, None, None)
                last[(topic, partition)] = (table, sent)
        for table, sent in last.values():  # a partition's records complete in order
            sent.add_done_callback(lambda fut, table=table: _persisted(table, fut))
        return len(records)


def _persisted(table: faust.Table, sent: asyncio.Future) -> None:
    """What Faust's per-record callback does, for a partition's last record only: on
    recovery the store then reads the changelog from after this offset."""
    if sent.cancelled() or sent.exception() is not None:
        log.error("changelog of %s not written: %r", table.name,
                  None if sent.cancelled() else sent.exception())
        return
    metadata = sent.result()
    table.data.set_persisted_offset(metadata.topic_partition, metadata.offset)


class DeferredChangelogTable(faust.Table):
    """A Faust table whose changelog records wait in `app.changelog` (see above)."""

    def _outbox(self) -> ChangelogOutbox | None:
        outbox = getattr(self.app, "changelog", None)
        return None if outbox is None or self.app.in_transaction else outbox

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

    def _defer(self, outbox: ChangelogOutbox, key: Any, value: Any,
               value_serializer: Any) -> int:
        partition = self.partition_for_key(key)  # the current event's: see current_event
        if partition is None:
            raise RuntimeError(f"{self.name}: a changelog record needs its partition")
        topic = self.changelog_topic
        key_bytes, _ = topic.prepare_key(key, self.key_serializer)
        value_bytes, _ = topic.prepare_value(value, value_serializer)
        outbox.add(self, partition, key_bytes, value_bytes)
        return partition
