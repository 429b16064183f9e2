"""A write-behind view of a table: a batch's writes reach the table once per key, at flush.

The correlation and KPI agents handle events in batches (`stream.take_events`). Within a
batch the same keys are written many times (an incident on every event of its call, the
reorder buffer's entry of an event pushed and released in the same batch), and every write
to a Faust table is a store write and a changelog message. This view keeps the batch's
writes in a dict and writes each key's final value once when the agent flushes it, before
the batch's offsets can be committed (Faust acks a `take_events` batch after the loop body
returns), so a crash mid-batch replays the batch from the last committed state as before.
A key written and deleted within one batch never reaches the table at all.

Reads see the pending writes first, then the table: the engine cannot tell it from the
table (it is also what an in-memory table returns: the object last assigned).

With `mirror=True` the view also keeps every key of its partition in memory, read once
from the table when the view is made (after Faust has recovered the table): the agent is
the only writer of its partition's keys, so the mirror stays exact, and a lookup (most are
misses: a new call's subject, an event id not yet buffered) costs a dict lookup instead of
a RocksDB read and a JSON decode. The table (RocksDB + changelog) stays the durable copy.
The memory this takes is the partition's state, which the engine keeps bounded (closed
incidents and old windows are deleted as event time passes; `rtcc_table_keys`).

A checkpoint sets the pending keys aside (`detach`) as the state it writes, and new writes
go to a fresh `pending` in front of them; `write_detached` writes them all, or a step at a
time with the event loop running in between when the checkpoint is written beside the
stage (RTCC_CHECKPOINT_BESIDE, agents/checkpoint.py). Reads look in `pending`, then in the
detached keys not yet written, then in the table.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

_DELETED = object()


class WriteBehind(MutableMapping):
    def __init__(self, backing: MutableMapping, mirror: bool = False) -> None:
        self.backing = backing
        self.pending: dict[str, Any] = {}
        # Set aside by `detach`, being written by a checkpoint; a key leaves it once written.
        self.detached: dict[str, Any] = {}
        self._to_write: list[tuple[str, Any]] = []
        self._written = 0
        # What the table holds (as of the last flush), when mirrored; else read the table.
        self.stored: MutableMapping = dict(backing.items()) if mirror else backing

    def _lookup(self, key: Any) -> Any:
        """The newest value of a key, `_DELETED`, or self if the view has no write of it."""
        value = self.pending.get(key, self)  # self: not pending
        if value is self:
            return self.detached.get(key, self)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._lookup(key)
        if value is self:
            return self.stored.get(key, default)
        return default if value is _DELETED else value

    def __getitem__(self, key: str) -> Any:
        value = self._lookup(key)
        if value is self:
            return self.stored[key]
        if value is _DELETED:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        value = self._lookup(key)
        if value is self:
            return key in self.stored
        return value is not _DELETED

    def __setitem__(self, key: str, value: Any) -> None:
        self.pending[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.pending[key] = _DELETED

    def pop(self, key: str, *default: Any) -> Any:
        value = self.get(key, _DELETED)
        if value is _DELETED:
            if default:
                return default[0]
            raise KeyError(key)
        self.pending[key] = _DELETED
        return value

    def __iter__(self) -> Iterator[str]:
        pending, detached = self.pending, self.detached
        for key in list(self.stored):
            if key not in pending and key not in detached:
                yield key
        for key, value in list(detached.items()):
            if key not in pending and value is not _DELETED:
                yield key
        for key, value in list(pending.items()):
            if value is not _DELETED:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def stored_count(self) -> int:
        """Keys the table holds, as of the last flush: a dict's size when mirrored (a
        RocksDB table's `len()` reads every key)."""
        return len(self.stored)

    def detach(self) -> "WriteBehind":
        """Set the pending writes aside as the state a checkpoint writes (`write_detached`);
        writes from now on are pending in front of them."""
        if self.detached:
            raise RuntimeError("the last checkpoint of this view is still being written")
        self.detached, self.pending = self.pending, {}
        self._to_write, self._written = list(self.detached.items()), 0
        return self

    def write_detached(self, limit: int | None = None) -> int:
        """Write up to `limit` of the detached keys (all when None), each with its final
        value, to the table; return how many are left to write."""
        items, start = self._to_write, self._written
        end = len(items) if limit is None else min(len(items), start + limit)
        backing, stored, detached = self.backing, self.stored, self.detached
        mirrored = stored is not backing
        for key, value in items[start:end]:
            if value is _DELETED:
                if key in stored:  # else never written, or already gone: nothing to log
                    del backing[key]
                    if mirrored:
                        del stored[key]
            else:
                backing[key] = value
                if mirrored:
                    stored[key] = value
            del detached[key]  # written: reads find it in the table now
        self._written = end
        if end == len(items):
            self._to_write, self._written = [], 0
        return len(items) - end

    def flush(self) -> int:
        """Write each pending key's final value to the table; return how many keys."""
        n = len(self.detach()._to_write)
        self.write_detached()
        return n
