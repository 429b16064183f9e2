"""The services the pipeline stands on: a Kafka 4 broker with working transactions, and Redis."""

from __future__ import annotations

import asyncio
import uuid

import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def _transaction_round_trip(bootstrap: str) -> list[bytes]:
    topic = f"it.txn.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap,
                                    transactional_id=f"it-{uuid.uuid4().hex[:8]}")
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait(topic, b"committed")
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aborted")
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send_and_wait(topic, b"end")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                    isolation_level="read_committed",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            seen: list[bytes] = []
            while not seen or seen[-1] != b"end":
                batch = await consumer.getmany(timeout_ms=1000)
                assert batch or len(seen) < 10
                for records in batch.values():
                    seen += [r.value for r in records]
            return seen
        finally:
            await consumer.stop()
    finally:
        await admin.delete_topics([topic])
        await admin.close()


def test_kafka_transactions_work_on_the_single_node_broker(services):
    # transactions need the transaction state topic: replication 1 on one node
    seen = asyncio.run(asyncio.wait_for(_transaction_round_trip(services.kafka_bootstrap), 60))
    assert seen == [b"committed", b"end"]


def test_redis_answers(services):
    client = redis.Redis.from_url(services.redis_url)
    try:
        assert client.ping()
        key = f"it:{uuid.uuid4().hex}"
        client.set(key, "x", ex=10)
        assert client.get(key) == b"x"
    finally:
        client.close()
