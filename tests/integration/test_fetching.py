"""The worker's fetch wait against the real broker (streams/fetching.py).

A fetch of partitions with nothing new comes back after the wait; a busy partition that is
left out of it waits that long too. How often an idle partition's fetch comes back is the
observable: every response refreshes the partition's `last_poll_timestamp`.
"""

from __future__ import annotations

import asyncio
import dataclasses

from aiokafka import TopicPartition

from streams.config import Settings
from streams.topics import NORMALISED


async def fetch_responses(settings: Settings, seconds: float = 2.0) -> int:
    """Responses to the fetches of an idle partition, by the consumer a worker builds."""
    # Imported here: importing streams.app at collection would give the unit tests that
    # collect after this module RocksDB tables instead of tests/unit/agent_state's memory.
    from streams.app import create_app

    app = create_app(settings)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    tp = TopicPartition(settings.topic(NORMALISED.name), 0)
    await consumer.start()
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
        await consumer.stop()


async def test_an_idle_partition_is_fetched_again_within_the_configured_wait(topics):
    short = await fetch_responses(dataclasses.replace(topics, fetch_max_wait_s=0.05))
    fausts = await fetch_responses(dataclasses.replace(topics, fetch_max_wait_s=1.5))
    # 2 s of 50 ms fetches is ~40 responses; Faust's own 1.5 s allows two at most.
    assert fausts <= 2
    assert short >= 8, short
