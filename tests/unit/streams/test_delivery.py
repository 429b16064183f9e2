"""streams/delivery.py: a message's callback that does not wait is run without a task; one
that waits, or a stopping service, goes through mode's own `wait_first`, with the same
outcome."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from streams.delivery import DirectDelivery
from streams.fetching import Consumer


class _Service(DirectDelivery):
    pass


def _counting_tasks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    made: list[object] = []
    real = asyncio.ensure_future

    def ensure_future(coro_or_future, **kwargs):  # type: ignore[no-untyped-def]
        made.append(coro_or_future)
        return real(coro_or_future, **kwargs)

    monkeypatch.setattr(asyncio, "ensure_future", ensure_future)
    return made


def test_the_workers_consumer_delivers_directly():
    assert issubclass(Consumer, DirectDelivery)


def test_a_callback_that_does_not_wait_needs_no_task(monkeypatch):
    made = _counting_tasks(monkeypatch)
    delivered: list[str] = []

    async def callback(message: str) -> str:
        delivered.append(message)
        return "put"

    async def main() -> None:
        service = _Service()
        suspend = asyncio.Event()
        waiting = suspend.wait()
        results = await service.wait_first(callback("m1"), waiting)
        assert results.results == ["put"] and not results.stopped
        assert inspect.getcoroutinestate(waiting) == inspect.CORO_CLOSED  # no warning
        assert made == []

    asyncio.run(main())
    assert delivered == ["m1"]


def test_a_callback_that_waits_finishes_under_the_race_as_before(monkeypatch):
    made = _counting_tasks(monkeypatch)
    steps: list[str] = []

    async def callback(room: asyncio.Future) -> str:
        steps.append("before")
        got = await room  # a full buffer: waits for room
        steps.append(f"after {got}")
        return "put"

    async def main() -> None:
        service = _Service()
        room = asyncio.get_running_loop().create_future()
        first = callback(room)
        asyncio.get_running_loop().call_later(0.01, room.set_result, "room")
        results = await service.wait_first(first, asyncio.Event())
        assert results.done == [first] and results.results == ["put"]
        assert not results.stopped

    asyncio.run(main())
    assert steps == ["before", "after room"]
    assert made  # mode's wait_first took over


def test_a_suspended_flow_wins_over_a_waiting_callback_which_is_cancelled():
    steps: list[str] = []

    async def callback(room: asyncio.Future) -> None:
        try:
            await room
            steps.append("put")
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise

    async def main() -> None:
        service = _Service()
        suspend = asyncio.Event()
        room = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, suspend.set)
        results = await service.wait_first(callback(room), suspend)
        assert results.done == [suspend] and not results.stopped
        await asyncio.sleep(0.01)  # the loser's cancellation runs

    asyncio.run(main())
    assert steps == ["cancelled"]


def test_an_error_of_the_callback_propagates():
    async def callback() -> None:
        raise ValueError("undecodable")

    async def main() -> None:
        with pytest.raises(ValueError, match="undecodable"):
            await _Service().wait_first(callback(), asyncio.Event())

    asyncio.run(main())


def test_a_stopping_service_answers_as_mode_does():
    async def callback() -> None:
        pass

    async def main() -> None:
        service = _Service()
        service._stopped.set()
        results = await service.wait_first(callback(), asyncio.Event())
        assert results.stopped

    asyncio.run(main())
