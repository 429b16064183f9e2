"""The worker's consumer carries RTCC_FETCH_MAX_WAIT_S and RTCC_FETCH_MIN_BYTES
(streams/fetching.py)."""

from __future__ import annotations

import asyncio
import dataclasses

from tests.unit.agent_state import checkpoint_flush  # noqa: F401  (first: tables in memory)

from streams.app import create_app  # noqa: E402
from streams.config import load  # noqa: E402
from streams.fetching import fetch_max_wait_ms  # noqa: E402


def worker_consumer_fetch(**changes: float) -> tuple[int, int]:
    """The fetch wait (ms) and minimum bytes of the consumer a worker with `changes` builds."""
    async def build() -> tuple[int, int]:
        app = create_app(dataclasses.replace(load(), **changes))
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms, consumer._fetch_min_bytes
        finally:
            await consumer.stop()  # never started: releases what the constructor made
    return asyncio.run(build())


def test_the_worker_consumer_waits_as_configured_not_fausts_1500_ms():
    assert worker_consumer_fetch(fetch_max_wait_s=0.05)[0] == 50
    assert worker_consumer_fetch(fetch_max_wait_s=0.2)[0] == 200


def test_the_worker_consumer_waits_for_the_configured_bytes():
    assert worker_consumer_fetch(fetch_min_bytes=1)[1] == 1
    assert worker_consumer_fetch(fetch_min_bytes=16384)[1] == 16384


def test_a_zero_wait_is_one_millisecond_not_a_busy_loop():
    class App:
        fetch_max_wait_s = 0.0
    assert fetch_max_wait_ms(App()) == 1
