"""The worker's fetch wait and minimum against the real broker (streams/fetching.py).

A fetch of partitions with nothing new comes back after the wait; a busy partition that is
left out of it waits that long too. How often a partition's fetch comes back is the
observable: every response refreshes the partition's `last_poll_timestamp`.
"""

from __future__ import annotations

import asyncio
import dataclasses

from aiokafka import AIOKafkaProducer, TopicPartition

from streams.config import Settings
from streams.topics import NORMALISED


async def fetch_responses(settings: Settings, seconds: float = 2.0,
                          trickle_every_s: float | None = None) -> int:
    """Responses to the fetches of a partition, by the consumer a worker builds; idle, or
    with a small record produced into it every `trickle_every_s`."""
    # Imported here: importing streams.app at collection would give the unit tests that
    # collect after this module RocksDB tables instead of tests/unit/agent_state's memory.
    from streams.app import create_app

    app = create_app(settings)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    tp = TopicPartition(settings.topic(NORMALISED.name), 0)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    await producer.start()

    async def trickle() -> None:
        while trickle_every_s is not None:
            await producer.send(tp.topic, b"x" * 100, partition=tp.partition)
            await asyncio.sleep(trickle_every_s)

    feed = asyncio.ensure_future(trickle())
    try:
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        responses: set[int] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            await consumer.getmany(tp, timeout_ms=50)
            polled = consumer.last_poll_timestamp(tp)
            if polled:
                responses.add(polled)
        return len(responses)
    finally:
        feed.cancel()
        await producer.stop()
        await consumer.stop()


async def test_an_idle_partition_is_fetched_again_within_the_configured_wait(topics):
    short = await fetch_responses(dataclasses.replace(topics, fetch_max_wait_s=0.05))
    fausts = await fetch_responses(dataclasses.replace(topics, fetch_max_wait_s=1.5))
    # 2 s of 50 ms fetches is ~40 responses; Faust's own 1.5 s allows two at most.
    assert fausts <= 2
    assert short >= 8, short


async def test_a_trickling_partition_is_fetched_per_record_unless_a_minimum_is_set(topics):
    """A record every 5 ms: at 1 byte each fetch comes back for a record or two; with a
    minimum the records of the wait come back together."""
    busy = dataclasses.replace(topics, fetch_max_wait_s=0.05, fetch_min_bytes=1)
    per_record = await fetch_responses(busy, trickle_every_s=0.005)
    fuller = await fetch_responses(dataclasses.replace(busy, fetch_min_bytes=1 << 20),
                                   trickle_every_s=0.005)
    # 2 s: ~400 records; 50 ms fetches waiting for a megabyte are ~40
    assert fuller <= 50, fuller
    assert per_record >= 2 * fuller, (per_record, fuller)
