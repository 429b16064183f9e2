"""Records appended to aiokafka's open batches (streams/producing.py) against the real broker:
each lands where `send()` would have put it, in the order given, and the future of a run
resolves with its last record's offset, or fails with the batch."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams import producing

pytestmark = pytest.mark.integration


async def _topic(bootstrap: str, partitions: int, **config: str) -> str:
    name = f"it-producing-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])
    finally:
        await admin.close()
    return name


async def _read(bootstrap: str, topic: str, count: int) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        records: list = []
        while len(records) < count:
            batch = await consumer.getmany(timeout_ms=1000)
            assert batch or records, "nothing to read"
            for part in batch.values():
                records += part
        return records
    finally:
        await consumer.stop()


def _records(topic: str, n: int) -> list[producing.Record]:
    """Explicit partitions and keyed ones, headers on some, tombstones, in one order."""
    out: list[producing.Record] = []
    for i in range(n):
        key = f"subject-{i % 37}".encode()
        value = None if i % 11 == 0 else f"update {i} ".encode() * 20
        partition = i % 4 if i % 3 == 0 else None
        headers = [("mark", str(i).encode())] if i % 5 == 0 else None
        out.append((topic, key, value, partition, headers))
    return out


async def _round_trip(bootstrap: str) -> None:
    topic = await _topic(bootstrap, 4)
    # Small batches, so that some fill up and take aiokafka's own path mid-call.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all",
                                max_batch_size=16 * 1024)
    await producer.start()
    try:
        assert producing.supported(producer)
        records = _records(topic, 3000)
        runs = []
        for start in range(0, len(records), 500):  # several calls, as several batches do
            runs += await producing.append_all(producer, records[start:start + 500])
        metadata = await asyncio.gather(*(fut for _, _, fut, _ in runs))
    finally:
        await producer.stop()

    # Where send() would have put each record: its partition, or the partitioner's.
    expected: dict[int, list] = defaultdict(list)
    for _, key, value, partition, headers in records:
        if partition is None:
            partition = producer._partition(topic, None, None, None, key, value)
        expected[partition].append((key, value, tuple(headers or ())))
    got: dict[int, list] = defaultdict(list)
    offsets: dict[int, list[int]] = defaultdict(list)
    for r in await _read(bootstrap, topic, len(records)):
        got[r.partition].append((r.key, r.value, tuple(r.headers)))
        offsets[r.partition].append(r.offset)
    assert dict(got) == dict(expected)  # every record, in the order given per partition

    # Each run's future carries its last record's offset: runs tile each partition in order.
    assert sum(n for *_, n in runs) == len(records)
    assert any(n > 1 for *_, n in runs) and len(runs) < len(records) / 10
    seen: dict[int, int] = defaultdict(int)
    for (_, partition, _, n), meta in zip(runs, metadata):
        seen[partition] += n
        assert meta.partition == partition
        assert meta.offset == offsets[partition][seen[partition] - 1]
    assert dict(seen) == {p: len(v) for p, v in expected.items()}


async def _refused(bootstrap: str) -> tuple[list, list]:
    topic = await _topic(bootstrap, 1, **{"max.message.bytes": "2000"})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, acks="all")
    await producer.start()
    try:
        runs = await producing.append_all(
            producer, [(topic, b"k", b"x" * 1000, 0, None) for _ in range(5)])
        outcomes = await asyncio.gather(*(fut for _, _, fut, _ in runs),
                                        return_exceptions=True)
    finally:
        await producer.stop()
    return runs, outcomes


def test_appended_records_land_as_send_would_put_them_and_runs_carry_offsets(services):
    asyncio.run(asyncio.wait_for(_round_trip(services.kafka_bootstrap), 120))


def test_a_batch_the_broker_refuses_fails_the_future_of_every_record_in_it(services):
    runs, outcomes = asyncio.run(asyncio.wait_for(_refused(services.kafka_bootstrap), 60))
    assert [n for *_, n in runs] == [5]  # one run, one future, five records
    assert all(isinstance(o, Exception) for o in outcomes)


def test_a_producer_of_another_event_loop_is_not_appended_to(services):
    """An accumulator is safe to touch only from its own event loop (a producer can live in
    a thread of its own): for any other the Outbox keeps to `send()` per record."""
    async def make() -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=services.kafka_bootstrap)

    producer = asyncio.run(make())  # made on a loop that is gone once this returns

    async def check() -> tuple[bool, bool]:
        here = AIOKafkaProducer(bootstrap_servers=services.kafka_bootstrap)
        return producing.supported(producer), producing.supported(here)

    assert asyncio.run(check()) == (False, True)
