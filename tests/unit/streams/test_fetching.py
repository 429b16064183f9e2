"""The worker's consumer carries RTCC_FETCH_MAX_WAIT_S (streams/fetching.py)."""

from __future__ import annotations

import asyncio
import dataclasses

from tests.unit.agent_state import checkpoint_flush  # noqa: F401  (first: tables in memory)

from streams.app import create_app  # noqa: E402
from streams.config import load  # noqa: E402
from streams.fetching import fetch_max_wait_ms  # noqa: E402


def worker_consumer_wait_ms(fetch_max_wait_s: float) -> int:
    async def build() -> int:
        app = create_app(dataclasses.replace(load(), fetch_max_wait_s=fetch_max_wait_s))
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()  # never started: releases what the constructor made
    return asyncio.run(build())


def test_the_worker_consumer_waits_as_configured_not_fausts_1500_ms():
    assert worker_consumer_wait_ms(0.05) == 50
    assert worker_consumer_wait_ms(0.2) == 200


def test_a_zero_wait_is_one_millisecond_not_a_busy_loop():
    class App:
        fetch_max_wait_s = 0.0
    assert fetch_max_wait_ms(App()) == 1
