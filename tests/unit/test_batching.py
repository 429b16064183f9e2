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


class _Topic:
    """What an Outbox needs of a Faust topic: a name and its codecs (orjson-like here)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name

    def prepare_key(self, key, serializer):
        return key.encode(), serializer

    def prepare_value(self, value, serializer):
        return repr(value).encode(), serializer  # None too, as orjson writes b"null"


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    async def send(self, topic, key, value, partition, timestamp, headers):
        self.sent.append((topic, key, value))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def test_a_compacted_topic_gets_only_each_keys_last_message_of_a_batch():
    from agents.batching import Outbox

    producer = _Producer()
    out = Outbox(SimpleNamespace(producer=producer))
    updates = _Topic("sa.updates")
    for key, value in [("inc-1", "opened"), ("inc-2", "opened"), ("inc-1", "closed")]:
        # `add` returns the bytes it queued: the compacted copy reuses them.
        out.add_latest("sa.state", *out.add(updates, key, value))
    out.add_latest("sa.state", b"inc-2", None)  # forgotten: a tombstone
    assert len(out) == 5

    asyncio.run(out.send())
    # Every update in order; then one state per key, in the order the keys came first.
    assert producer.sent == [
        ("sa.updates", b"inc-1", b"'opened'"), ("sa.updates", b"inc-2", b"'opened'"),
        ("sa.updates", b"inc-1", b"'closed'"),
        ("sa.state", b"inc-1", b"'closed'"), ("sa.state", b"inc-2", None),
    ]
    assert len(out) == 0

    producer.sent.clear()  # the next batch starts afresh
    out.add_latest("sa.state", b"inc-1", b"'reopened'")
    asyncio.run(out.send())
    assert producer.sent == [("sa.state", b"inc-1", b"'reopened'")]


def test_a_message_is_serialised_as_the_value_was_when_added():
    """The engine may change an update's objects later in the batch: the topic must carry
    what the update said when it was published."""
    from agents.batching import Outbox

    producer = _Producer()
    out = Outbox(SimpleNamespace(producer=producer))
    update = {"status": "dispatched"}
    out.add(_Topic("sa.updates"), "inc-1", update)
    update["status"] = "changed later, never published"
    asyncio.run(out.send())
    assert producer.sent == [("sa.updates", b"inc-1", repr({"status": "dispatched"}).encode())]
