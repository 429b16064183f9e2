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

    async def nothing_to_rewind(self: rebalance.SeekFirstRecovery) -> dict:
        return {}

    monkeypatch.setattr(Recovery, "on_recovery_completed", resume_and_seek)
    monkeypatch.setattr(rebalance.SeekFirstRecovery, "rewind_uncommitted", nothing_to_rewind)
    monkeypatch.setattr(rebalance, "FETCH_TIMEOUT_S", 0.0)
    consumer.resume_flow()  # as Faust's recovery leaves it when no changelog needs reading
    recovery = app.tables.recovery
    assert isinstance(recovery, rebalance.SeekFirstRecovery)
    asyncio.run(recovery.on_recovery_completed(0))
    assert flow_when_sought == [False]  # nothing fetched before the seek is drained after it


class _Consumer:
    """The consumer calls the rewind makes, on a fixed assignment and committed offsets."""

    def __init__(self, assignment: set, committed: dict, earliest: dict) -> None:
        self._assignment, self._committed, self._earliest = assignment, committed, earliest
        self.flow_active = True
        self.sought: list[tuple[bool, dict]] = []

    def assignment(self) -> set:
        return set(self._assignment)

    async def seek_to_committed(self) -> dict:
        return dict(self._committed)

    async def earliest_offsets(self, *partitions: object) -> dict:
        return {tp: self._earliest[tp] for tp in partitions}

    async def seek_wait(self, partitions: dict) -> None:
        self.sought.append((self.flow_active, dict(partitions)))

    def stop_flow(self) -> None:
        self.flow_active = False

    def resume_flow(self) -> None:
        self.flow_active = True


def test_partitions_never_committed_are_read_again_from_their_earliest_offset(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Records fetched and dropped before the seek stay read on a partition that has no
    committed offset, since the seek to committed offsets leaves it where it stands: the
    rewind seeks it (and one committed at 0) to its earliest offset, with the flow stopped,
    and leaves committed partitions and changelogs to Faust."""
    from faust.types import TP

    from streams.app import app

    recovery = app.tables.recovery
    never, zero, done = TP("src", 0), TP("src", 1), TP("src", 2)
    changelog = TP(f"{app.conf.id}-correlate-incidents-changelog", 0)
    consumer = _Consumer({never, zero, done, changelog},
                         {never: None, zero: 0, done: 42, changelog: None},
                         {never: 7, zero: 0, done: 0, changelog: 0})
    monkeypatch.setattr(type(app), "consumer", property(lambda self: consumer))
    monkeypatch.setattr(recovery, "_is_changelog_tp", lambda tp: tp == changelog)
    super_calls: list[int] = []

    async def resume_and_seek(self: Recovery, generation_id: int = 0) -> None:
        super_calls.append(len(consumer.sought))
        consumer.resume_flow()

    monkeypatch.setattr(Recovery, "on_recovery_completed", resume_and_seek)
    monkeypatch.setattr(rebalance, "FETCH_TIMEOUT_S", 0.0)
    asyncio.run(recovery.on_recovery_completed(0))
    assert consumer.sought == [(False, {never: 7, zero: 0})]
    assert super_calls == [1]  # before Faust resumes the flow


@pytest.mark.filterwarnings("ignore:.*consumer_auto_offset_reset")
def test_nothing_is_rewound_when_the_consumer_starts_at_the_latest_offset(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.types import TP

    from streams.app import app

    never = TP("src", 0)
    consumer = _Consumer({never}, {never: None}, {never: 0})
    monkeypatch.setattr(type(app), "consumer", property(lambda self: consumer))
    monkeypatch.setattr(app.conf, "consumer_auto_offset_reset", "latest")
    assert asyncio.run(app.tables.recovery.rewind_uncommitted()) == {}
    assert consumer.sought == []
