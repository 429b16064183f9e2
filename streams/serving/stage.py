"""The `serve` stage of a worker: the Redis sinks of every audience, supervised.

Runs beside the agents, not as one: the sinks read topics the agents have written and keep
their position in Redis, so a Redis outage holds back only the serving layer.
"""

from __future__ import annotations

import asyncio
import logging

from streams.app import app, settings
from streams.serving.sink import run_sinks
from streams.topics import AUDIENCES

log = logging.getLogger(__name__)


@app.task
async def serve() -> None:
    while True:
        try:
            await run_sinks(settings, list(AUDIENCES))
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug or a broker hiccup must not end serving for good
            log.exception("serve: sinks stopped; restarting in 5 s")
            await asyncio.sleep(5.0)
