"""Handing each fetched message to its streams without four tasks per message.

Faust's consumer delivers every message it fetches with
`await self.wait_first(callback(message), self.suspend_flow.wait())`
(faust/transport/consumer.py, `_drain_messages`), so that a delivery blocked on a full
stream buffer gives way when a rebalance suspends the flow. mode's `Service.wait_first`
wraps each argument, and the service's stopped and crashed events, in a task of its own,
waits for the first with `asyncio.wait` and cancels the rest: four tasks and several turns
of the event loop per message, for a callback that almost never waits (Faust's conductor
decodes the message and puts it in each stream's buffer without blocking; a full buffer
pauses the partition instead). Measured on the plain one-agent Faust baseline of the bench:
~40 us of CPU per message, 17 % of what that agent costs (bench/NOTES.md section 35).

`DirectDelivery.wait_first` first runs the callback's coroutine itself: when it completes
without waiting, that is the outcome `wait_first` would have had (the callback first
done), with no task. When it does wait, the rest of it goes to mode's `wait_first` as
before, with the events it races against; so does any call while the service is stopping
or crashed, with a timeout, or whose first argument is not a coroutine. What the flow
suspension guards is unchanged: Faust's `getmany` checks the flow before each message it
yields, and the drain loop still gives the event loop a turn every 100 messages.
"""

from __future__ import annotations

from collections.abc import Generator
from types import CoroutineType
from typing import Any

from mode import Service
from mode.services import WaitResults


class _Resumed:
    """A coroutine that has already run to its first wait, awaitable for the rest: the
    future it yielded goes to whoever awaits this, and what that sends or throws back goes
    on to the coroutine (what `yield from` does for a coroutine not yet started)."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: CoroutineType, yielded: Any) -> None:
        self.coro, self.yielded = coro, yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                value = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 (a cancellation, thrown on)
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(value)
                except StopIteration as stop:
                    return stop.value


class DirectDelivery(Service):
    """A Service whose `wait_first` runs a first coroutine that does not wait without any
    task (see above)."""

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        first = coros[0] if coros else None
        if (type(first) is not CoroutineType or timeout is not None
                or self._stopped.is_set() or self._crashed.is_set()):
            return await super().wait_first(*coros, timeout=timeout)
        try:
            yielded = first.send(None)
        except StopIteration as done:
            _close(coros[1:])
            return WaitResults([first], [done.value], False)
        except BaseException:
            _close(coros[1:])
            raise
        resumed = _Resumed(first, yielded)
        results = await super().wait_first(resumed, *coros[1:])
        return WaitResults([first if c is resumed else c for c in results.done],
                           results.results, results.stopped)


def _close(coros: tuple[Any, ...]) -> None:
    """The coroutines that lost without running: closed, as a cancelled task would."""
    for coro in coros:
        if type(coro) is CoroutineType:
            coro.close()
