"""Helpers for Faust tables shared by the stages."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any


class PartitionView(MutableMapping):
    """The keys of one partition in a table shared by all partitions of this worker.

    Faust writes a table key to the changelog partition of the event being processed, so
    state that one partition's engine owns must not be visible to another's: each engine
    sees its own key space through a prefix. A stored None means absent (tables here are
    created with default=None).
    """

    def __init__(self, table: Any, partition: int) -> None:
        self.table = table
        self.prefix = f"{partition}/"

    def get(self, key: str, default: Any = None) -> Any:
        """Looked up on every event: one table read, no KeyError raised and caught."""
        value = self.table.get(self.prefix + key)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        value = self.table.get(self.prefix + key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.table[self.prefix + key] = value

    def __delitem__(self, key: str) -> None:
        del self.table[self.prefix + key]

    def __iter__(self) -> Iterator[str]:
        n = len(self.prefix)
        return (k[n:] for k in list(self.table.keys()) if k.startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)
