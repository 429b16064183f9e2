"""streams/changelog.py: a table's changelog records wait for the checkpoint, serialised as
Faust would send them, and each changelog partition's persisted offset is recorded once,
from its last record."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.types import TP
from faust.types.tuples import Message

import tests.unit.agent_state  # noqa: F401  (first: the agents' tables in memory)
from agents.batching import current_event
from streams.app import App
from streams.changelog import ChangelogOutbox, DeferredChangelogTable


class _Event(SimpleNamespace):
    __slots__ = ("__weakref__",)  # Faust keeps the current event by weak reference


def _event(partition: int) -> _Event:
    tp = TP("norm", partition)
    return _Event(message=Message(tp.topic, partition, 0, 0.0, 0, None, b"k", b"v", None,
                                  tp=tp))


def _table() -> tuple[App, Any]:
    app = App("test-changelog", store="memory://", autodiscover=False,
              Table=DeferredChangelogTable, key_serializer="raw", value_serializer="orjson")
    table = app.Table("incidents", default=None, partitions=4)
    table.value_serializer = "orjson"
    return app, table


def _faust_path(table: Any) -> list[dict]:
    """What Faust's own path (`send_soon`, a FutureMessage per record) is asked to send."""
    sent: list[dict] = []
    table.changelog_topic.send_soon = lambda **kw: sent.append(kw) or SimpleNamespace(
        message=SimpleNamespace(partition=kw["partition"]))
    return sent


def test_writes_wait_in_the_outbox_with_their_partition_and_bytes() -> None:
    app, table = _table()
    sent_soon = _faust_path(table)

    async def write() -> None:
        with current_event(_event(2)):  # type: ignore[arg-type]
            table["a"] = {"n": 1}
            table["b"] = {"n": 2}
            del table["a"]
        with current_event(_event(3)):  # type: ignore[arg-type]
            table["c"] = [1, "x"]

    asyncio.run(write())
    assert sent_soon == []  # nothing through Faust's per-record futures
    changelog = table.changelog_topic.get_topic_name()
    assert app.changelog.messages.messages == [
        (changelog, b'"a"', orjson.dumps({"n": 1}), 2, None),  # keys in Faust's json codec
        (changelog, b'"b"', orjson.dumps({"n": 2}), 2, None),
        (changelog, b'"a"', None, 2, None),  # a delete is a tombstone
        (changelog, b'"c"', orjson.dumps([1, "x"]), 3, None),
    ]
    assert app.changelog.tables == {changelog: table}  # whose offsets its records persist
    assert dict(table.items()) == {"b": {"n": 2}, "c": [1, "x"]}  # the store has them now


def test_the_record_is_what_faust_would_have_sent() -> None:
    """Key and value bytes equal those of Faust's own send path for the same write."""
    app, table = _table()
    faust_sent = _faust_path(table)

    async def write() -> None:
        with current_event(_event(1)):  # type: ignore[arg-type]
            table["k"] = {"incident": "x", "calls": [1, 2]}
            app.changelog = None  # type: ignore[assignment]  # Faust's path from here
            table["k"] = {"incident": "x", "calls": [1, 2]}

    outbox = app.changelog
    asyncio.run(write())
    (_, key, value, partition, _), = outbox.messages.messages
    faust_key, _ = table.changelog_topic.prepare_key(faust_sent[0]["key"],
                                                     faust_sent[0]["key_serializer"])
    faust_value, _ = table.changelog_topic.prepare_value(faust_sent[0]["value"],
                                                         faust_sent[0]["value_serializer"])
    assert (partition, key, value) == (faust_sent[0]["partition"], faust_key, faust_value)


class _Producer:
    """Faust's producer as the outbox uses it: `send` returns a future of the metadata."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.futures: list[asyncio.Future] = []

    async def send(self, topic: str, key: bytes, value: bytes | None, partition: int,
                   timestamp: None, headers: None) -> asyncio.Future:
        self.sent.append((topic, key, value, partition))
        fut = asyncio.get_running_loop().create_future()
        self.futures.append(fut)
        return fut

    def complete(self) -> None:
        for offset, fut in enumerate(self.futures):
            topic, _, _, partition = self.sent[offset]
            fut.set_result(SimpleNamespace(topic_partition=TP(topic, partition),
                                           offset=100 + offset))


def _fake_table(name: str, persisted: list) -> SimpleNamespace:
    """A table as the outbox uses it; its changelog topic passes bytes through."""
    return SimpleNamespace(
        name=name, key_serializer="raw",
        changelog_topic=SimpleNamespace(get_topic_name=lambda: f"{name}-changelog",
                                        prepare_key=lambda key, codec: (key, None),
                                        prepare_value=lambda value, codec: (value, None)),
        data=SimpleNamespace(set_persisted_offset=lambda tp, offset: persisted.append(
            (tp.topic, tp.partition, offset))))


def _outbox(producer: _Producer) -> ChangelogOutbox:
    return ChangelogOutbox(SimpleNamespace(producer=producer))  # type: ignore[arg-type]


def test_send_hands_records_over_in_order_and_persists_each_partitions_last_offset() -> None:
    persisted: list[tuple] = []
    incidents, groups = _fake_table("incidents", persisted), _fake_table("groups", persisted)
    producer = _Producer()
    outbox = _outbox(producer)
    for table, partition, key in [(incidents, 0, b"a"), (groups, 0, b"g"), (incidents, 0, b"b"),
                                  (incidents, 1, b"c")]:
        outbox.add(table, partition, key, b"v", "raw")  # type: ignore[arg-type]

    async def main() -> int:
        n = await outbox.send()
        assert persisted == []  # nothing is persisted before the broker has it
        producer.complete()
        await asyncio.sleep(0)  # done callbacks run
        return n

    assert asyncio.run(main()) == 4
    assert [(t, k, p) for t, k, _, p in producer.sent] == [
        ("incidents-changelog", b"a", 0), ("groups-changelog", b"g", 0),
        ("incidents-changelog", b"b", 0), ("incidents-changelog", b"c", 1)]
    assert sorted(persisted) == [("groups-changelog", 0, 101), ("incidents-changelog", 0, 102),
                                 ("incidents-changelog", 1, 103)]
    assert len(outbox.messages) == 0


def test_a_second_send_waits_for_the_first_to_hand_over_every_record() -> None:
    """Two stages share the outbox: a checkpoint whose records another's send took must
    not ack before that send has handed them to the producer."""
    order: list[str] = []

    class SlowProducer(_Producer):
        async def send(self, *args: Any) -> asyncio.Future:
            await asyncio.sleep(0.01)
            order.append(f"sent {args[1].decode()}")
            return await super().send(*args)

    persisted: list = []
    outbox = _outbox(SlowProducer())
    for key in (b"1", b"2", b"3"):
        outbox.add(_fake_table("t", persisted), 0, key, b"v", "raw")  # type: ignore[arg-type]

    async def main() -> None:
        first = asyncio.create_task(outbox.send())
        await asyncio.sleep(0)  # the first send has taken all three records
        assert await outbox.send() == 0
        order.append("second send returned")
        await first

    asyncio.run(main())
    assert order == ["sent 1", "sent 2", "sent 3", "second send returned"]


@pytest.mark.parametrize("failure", [RuntimeError("broker down"), None])
def test_a_failed_or_cancelled_send_persists_no_offset(failure: Exception | None) -> None:
    persisted: list = []
    producer = _Producer()
    outbox = _outbox(producer)
    outbox.add(_fake_table("t", persisted), 0, b"k", b"v", "raw")  # type: ignore[arg-type]

    async def main() -> None:
        await outbox.send()
        if failure is None:
            producer.futures[0].cancel()
        else:
            producer.futures[0].set_exception(failure)
        await asyncio.sleep(0)

    asyncio.run(main())
    assert persisted == []


def test_a_changelog_the_metadata_does_not_show_yet_is_no_mismatch(monkeypatch) -> None:
    """Right after a fresh deployment the consumer's metadata can lack the changelog Faust
    has just created (0 partitions): a write then goes on and the check comes again; a
    real mismatch still stops the agent, as Faust's does."""
    from faust.exceptions import PartitionsMismatch

    app, table = _table()
    _faust_path(table)
    counts = {"norm": 4, table.changelog_topic_name: 0}
    monkeypatch.setattr(app.consumer, "topic_partitions", counts.get)

    async def write(key: str) -> None:
        with current_event(_event(1)):  # type: ignore[arg-type]
            table[key] = 1

    asyncio.run(write("a"))  # not shown yet: no crash
    counts[table.changelog_topic_name] = 2
    with pytest.raises(PartitionsMismatch):
        asyncio.run(write("b"))
    counts[table.changelog_topic_name] = 4
    asyncio.run(write("c"))
    assert "a" in table and "c" in table
