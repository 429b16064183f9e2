"""`agents.batching.batches`: a batch's offsets become committable only once the body has
handled it. Faust's `take_events` acks a batch in a `finally`, also when the body was
interrupted; the stream here does the same with Faust's own Message and its refcount."""

from __future__ import annotations

import asyncio
import gc
from types import SimpleNamespace

import pytest
from faust.types import TP, Message

from agents.batching import batches


class _Consumer:
    def __init__(self) -> None:
        self.final_acks: list[int] = []

    def _acked(self, message: Message) -> None:
        self.final_acks.append(message.offset)


def _message(offset: int) -> Message:
    m = Message("cad", 0, offset, 0.0, 0, None, b"k", b"v", None, tp=TP("cad", 0))
    m.incref()  # the one reference Faust's conductor takes for the stream that reads it
    return m


class _Stream:
    """`take_events` as Faust writes it: yield a batch, ack it in `finally`."""

    def __init__(self, batches_: list[list[int]], consumer: _Consumer) -> None:
        self.batches = batches_
        self.consumer = consumer

    async def take_events(self, max_: int, within: float):
        for offsets in self.batches:
            events = [SimpleNamespace(message=_message(o)) for o in offsets]
            try:
                yield events
            finally:
                for event in events:
                    if event.message.ack(self.consumer):
                        self.consumer._acked(event.message)


@pytest.fixture(autouse=True)
def _final_ack(monkeypatch):
    monkeypatch.setattr(Message, "on_final_ack", lambda self, consumer: True)


def test_a_completed_batch_is_acked():
    consumer = _Consumer()

    async def agent():
        async for events in batches(_Stream([[0, 1], [2]], consumer), 10, 0.1):
            pass

    asyncio.run(agent())
    assert consumer.final_acks == [0, 1, 2]


@pytest.mark.parametrize("interruption", [asyncio.CancelledError, RuntimeError])
def test_a_batch_whose_body_was_interrupted_is_never_acked(interruption):
    consumer = _Consumer()

    async def agent():
        async for events in batches(_Stream([[0, 1], [2, 3], [4]], consumer), 10, 0.1):
            if events[0].message.offset == 2:
                raise interruption  # SIGTERM cancels the agent while it awaits the producer

    async def main():
        with pytest.raises(interruption):
            await agent()
        gc.collect()  # the abandoned generators are finalised: their `finally` acks run
        await asyncio.sleep(0)

    asyncio.run(main())
    assert consumer.final_acks == [0, 1]  # 2 and 3 stay unacked: read again after restart
