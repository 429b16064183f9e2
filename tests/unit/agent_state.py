"""Driving a stateful agent's partition state the way a worker does, without a broker.

Import this before `streams.app`: the agents' tables are then Faust's in-memory tables in
this process.
"""

from __future__ import annotations

import asyncio
import os
from types import SimpleNamespace
from typing import Any, Callable, Sequence

from faust.types import TP
from faust.types.tuples import Message

os.environ.setdefault("RTCC_TABLE_STORE", "memory://")


class _Event(SimpleNamespace):
    __slots__ = ("__weakref__",)  # Faust keeps the current event by weak reference


def checkpoint_flush(detach: Callable[[int], Sequence[Any]], partition: int) -> None:
    """What a checkpoint does: a partition's views into the tables, with an event of the
    partition current (its changelog partition); `detach` is the stage's
    (agents/checkpoint.py)."""
    from agents.batching import current_event

    tp = TP("any", partition)
    event = _Event(message=Message(tp.topic, partition, 0, 0.0, 0, None, b"k", b"v", None,
                                   tp=tp))

    async def write() -> None:  # Faust queues the changelog records on the running loop
        with current_event(event):  # type: ignore[arg-type]
            for view in detach(partition):
                view.write_detached()
    asyncio.run(write())
