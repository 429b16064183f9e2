"""After a rebalance, Faust's recovery resumes and seeks the stream partitions while the
consumer fetches nothing (streams/rebalance.py)."""

from __future__ import annotations

import asyncio

import pytest
from faust.tables.recovery import Recovery

import tests.unit.agent_state  # noqa: F401  (first: the agents' tables in memory)

from streams import rebalance  # noqa: E402


def test_partitions_are_resumed_and_sought_with_the_flow_stopped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.app import app

    consumer = app.consumer
    flow_when_sought: list[bool] = []

    async def resume_and_seek(self: Recovery, generation_id: int = 0) -> None:
        """Faust's part: resume the partitions, seek them, then resume the flow."""
        flow_when_sought.append(consumer.flow_active)
        consumer.resume_flow()

    monkeypatch.setattr(Recovery, "on_recovery_completed", resume_and_seek)
    monkeypatch.setattr(rebalance, "FETCH_TIMEOUT_S", 0.0)
    consumer.resume_flow()  # as Faust's recovery leaves it when no changelog needs reading
    recovery = app.tables.recovery
    assert isinstance(recovery, rebalance.SeekFirstRecovery)
    asyncio.run(recovery.on_recovery_completed(0))
    assert flow_when_sought == [False]  # nothing fetched before the seek is drained after it
