"""`agents.checkpoint.Checkpoint`: an event is acked only by the checkpoint that wrote its
state, after its outputs were flushed to Kafka; the views are written with the partition's
own event current (its changelog partition). Faust's own Message and refcount, with the
batch acks of `take_events` as in tests/unit/test_batching.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.streams import current_event
from faust.types import TP, Message

from agents.batching import batches
from agents.checkpoint import Checkpoint
from streams import config


class _World:
    """The app as a checkpoint sees it, logging what happens in which order."""

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self.producer = SimpleNamespace(flush=self._flush)
        self.consumer = SimpleNamespace(final=lambda m: self.log.append(("ack", m.partition,
                                                                         m.offset)))

    async def _flush(self) -> None:
        self.log.append(("producer.flush",))

    async def crash(self, reason: BaseException) -> None:
        self.log.append(("crash", type(reason).__name__))

    def acked(self) -> list[tuple[int, int]]:
        return [(p, o) for kind, *rest in self.log if kind == "ack" for p, o in [rest]]


@pytest.fixture(autouse=True)
def _final_ack(monkeypatch):
    monkeypatch.setattr(Message, "on_final_ack", lambda self, consumer: consumer.final(self))


class _Event(SimpleNamespace):
    """Faust's Event as far as a checkpoint uses it (weak-referenceable, as Faust's is)."""

    __slots__ = ("__weakref__",)


def _event(partition: int, offset: int) -> _Event:
    m = Message("norm", partition, offset, 0.0, 0, None, b"k", b"v", None,
                tp=TP("norm", partition))
    m.incref()  # the stream's reference
    return _Event(message=m, value={"offset": offset})


async def _stream(batches_: list[list[tuple[int, int]]], world: _World):
    """Faust's `take_events`: yield a batch, ack it in `finally`."""
    for spec in batches_:
        events = [_event(p, o) for p, o in spec]
        try:
            yield events
        finally:
            for event in events:
                event.message.ack(world.consumer)


class _View:
    """A partition's views as a checkpoint writes them (WriteBehind.detach/write_detached):
    `keys` to write, logged as written, with the event current at the time."""

    def __init__(self, world: _World, partition: int, keys: int = 1,
                 tag: tuple = ()) -> None:
        self.world, self.partition, self.left, self.tag = world, partition, keys, tag

    def write_detached(self, limit: int | None = None) -> int:
        n = self.left if limit is None else min(limit, self.left)
        self.left -= n
        event = current_event()
        self.world.log.append(("flush", self.partition,
                               event.value["offset"] if event else None, *self.tag))
        return self.left


def _checkpoint(world: _World, interval: float) -> Checkpoint:
    return Checkpoint(world, interval,  # type: ignore[arg-type]
                      lambda partition: [_View(world, partition)])


async def _run_stage(world: _World, checkpoint: Checkpoint,
                     batches_: list[list[tuple[int, int]]]) -> None:
    stream = SimpleNamespace(take_events=lambda n, within: _stream(batches_, world))
    async for events in batches(stream, 10, 0.01):  # type: ignore[arg-type]
        async with checkpoint.batch(events):
            world.log.append(("batch", [e.message.offset for e in events]))


def test_events_stay_unacked_until_a_checkpoint_writes_their_state():
    world = _World()
    checkpoint = _checkpoint(world, 3600.0)
    asyncio.run(_run_stage(world, checkpoint, [[(0, 0), (1, 0)], [(0, 1)]]))
    assert world.acked() == []  # both batches done, nothing committable yet
    assert not [e for e in world.log if e[0] == "flush"]

    assert asyncio.run(checkpoint.write()) == 3
    assert world.log[-6:] == [
        ("producer.flush",),               # the held events' outputs are in Kafka first
        ("flush", 0, 1), ("flush", 1, 0),  # each partition with its own latest event current
        ("ack", 0, 0), ("ack", 1, 0), ("ack", 0, 1),  # then acked, in the order read
    ]
    assert asyncio.run(checkpoint.write()) == 0  # nothing held: nothing written


def test_the_changelog_of_the_views_goes_to_the_producer_before_the_acks():
    """streams.app.App's changelog outbox: the records the views' writes left there are
    handed to the producer after the writes and before any ack (streams/changelog.py)."""
    world = _World()

    async def send_changelog() -> int:
        world.log.append(("changelog.send",))
        return 0

    world.changelog = SimpleNamespace(send=send_changelog)  # type: ignore[attr-defined]
    checkpoint = _checkpoint(world, 3600.0)
    asyncio.run(_run_stage(world, checkpoint, [[(0, 0), (1, 0)]]))
    asyncio.run(checkpoint.write())
    assert world.log[-6:] == [("producer.flush",), ("flush", 0, 0), ("flush", 1, 0),
                              ("changelog.send",), ("ack", 0, 0), ("ack", 1, 0)]


def test_interval_zero_writes_and_acks_every_batch_in_turn():
    world = _World()
    checkpoint = _checkpoint(world, 0.0)
    asyncio.run(_run_stage(world, checkpoint, [[(0, 0), (0, 1)], [(0, 2)]]))
    assert world.log == [
        ("batch", [0, 1]), ("producer.flush",), ("flush", 0, 1),
        ("ack", 0, 0), ("ack", 0, 1),  # take_events' own ack ends the batch
        ("batch", [2]), ("producer.flush",), ("flush", 0, 2), ("ack", 0, 2),
    ]


def test_the_timer_writes_an_idle_stages_checkpoint_once_due():
    world = _World()
    checkpoint = _checkpoint(world, 0.05)

    async def main() -> None:
        await _run_stage(world, checkpoint, [[(2, 7)]])
        await checkpoint.tick()
        assert world.acked() == []  # not due yet
        await asyncio.sleep(0.06)
        await checkpoint.tick()

    asyncio.run(main())
    assert world.acked() == [(2, 7)]
    assert ("flush", 2, 7) in world.log


def test_the_timer_waits_for_a_batch_in_progress():
    """A checkpoint never writes the state of a half-handled batch."""
    world = _World()
    checkpoint = _checkpoint(world, 0.0)

    async def main() -> None:
        release = asyncio.Event()

        async def body() -> None:
            async with checkpoint.batch([_event(0, 0)]):
                world.log.append(("handling",))
                await release.wait()  # e.g. awaiting the producer mid-batch
                world.log.append(("handled",))

        task = asyncio.create_task(body())
        await asyncio.sleep(0)
        tick = asyncio.create_task(checkpoint.tick())
        await asyncio.sleep(0.01)
        assert ("producer.flush",) not in world.log
        release.set()
        await asyncio.gather(task, tick)

    asyncio.run(main())
    assert world.log.index(("handled",)) < world.log.index(("producer.flush",))


@pytest.mark.parametrize("interruption", [asyncio.CancelledError, RuntimeError])
def test_the_state_of_an_interrupted_batch_is_never_written(interruption):
    """A body cancelled (SIGTERM mid-batch) or failing in the producer path leaves partial
    state in the views: no checkpoint writes it, and none of the held events is acked, so
    they are read again after a restart. A failure also crashes the app."""
    world = _World()
    checkpoint = _checkpoint(world, 3600.0)

    async def main() -> None:
        async with checkpoint.batch([_event(0, 0)]):
            pass
        with pytest.raises(interruption):
            async with checkpoint.batch([_event(0, 1)]):
                raise interruption
        assert await checkpoint.write_now() == 0

    asyncio.run(main())
    assert world.acked() == []
    assert not [e for e in world.log if e[0] in ("flush", "producer.flush")]
    # an error stops the worker (it could never checkpoint again); a cancellation is a stop
    crashed = [e for e in world.log if e[0] == "crash"]
    expected = [] if interruption is asyncio.CancelledError else [("crash", "RuntimeError")]
    assert crashed == expected


def test_the_app_writes_every_checkpoint_before_it_waits_for_acks():
    """A rebalance or a shutdown pauses the streams, then waits for every message read to
    be acked: the checkpoints, holding acks, are written first (on shutdown their timers
    have already stopped)."""
    from streams.app import App

    app = App("test-checkpoint-app", autodiscover=False)
    app.checkpoint_every_s = 0.01
    world = _World()
    world.producer = SimpleNamespace(flush=world._flush)
    checkpoint = Checkpoint(app, 3600.0, lambda p: [_View(world, p)])
    assert checkpoint.write_now in app.before_wait_empty

    async def wait_empty() -> None:
        world.log.append(("wait_empty",))
        await asyncio.sleep(0.05)  # the batch in hand is handled meanwhile...
        late = _event(3, 10)
        async with checkpoint.batch([late]):
            pass
        late.message.ack(world.consumer)
        for _ in range(200):  # ...and its events acked by a checkpoint, not a timer
            if len(world.acked()) == 2:
                world.log.append(("empty",))
                return
            await asyncio.sleep(0.01)

    async def main() -> None:
        checkpoint.app = world  # type: ignore[assignment]  # its producer and consumer
        event = _event(3, 9)
        async with checkpoint.batch([event]):
            pass
        event.message.ack(world.consumer)  # take_events' own ack at the end of the batch
        await app._consumer_wait_empty(SimpleNamespace(wait_empty=wait_empty),
                                       SimpleNamespace(info=lambda *a: None))

    asyncio.run(main())
    assert world.log[:4] == [("producer.flush",), ("flush", 3, 9), ("ack", 3, 9),
                             ("wait_empty",)]
    assert world.log[-2:] == [("ack", 3, 10), ("empty",)]


async def _one_batch(checkpoint: Checkpoint, world: _World, event: _Event) -> None:
    """A batch of one event as an agent runs it, then take_events' own ack after it."""
    async with checkpoint.batch([event]):
        world.log.append(("batch", event.message.offset))
    event.message.ack(world.consumer)


def test_a_due_checkpoint_is_written_beside_the_stage_in_steps():
    """RTCC_CHECKPOINT_BESIDE: taken at the end of the batch it fell due after, a
    checkpoint is written by a task of its own, a step of CHUNK_KEYS keys at a time with the
    event loop running in between, while the stage goes on. Its events are acked once all
    of it is written; the next is taken only after that."""
    from agents.checkpoint import CHUNK_KEYS

    world = _World()
    checkpoint = Checkpoint(world, 0.01,  # type: ignore[arg-type]
                            lambda p: [_View(world, p, keys=2 * CHUNK_KEYS + 1)],
                            beside="on")

    async def main() -> None:
        await asyncio.sleep(0.02)  # the checkpoint is due at the end of the first batch
        await _one_batch(checkpoint, world, _event(0, 0))
        assert checkpoint.writing is not None and world.acked() == []
        await _one_batch(checkpoint, world, _event(0, 1))  # no second checkpoint meanwhile
        while checkpoint.writing is not None:
            world.log.append(("other agents",))
            await asyncio.sleep(0)
        assert world.acked() == [(0, 0)]
        assert await checkpoint.write_now() == 1  # the second batch's, at once

    asyncio.run(main())
    first = [i for i, e in enumerate(world.log) if e == ("flush", 0, 0)]
    assert len(first) == 3  # three steps
    assert world.log.index(("batch", 1)) < world.log.index(("producer.flush",)) < first[0]
    between = world.log[first[0]:first[-1]]
    assert ("other agents",) in between  # the loop ran between the steps
    assert world.log.index(("ack", 0, 0)) > first[-1]
    assert world.log[-3:] == [("producer.flush",), ("flush", 0, 1), ("ack", 0, 1)]


def test_a_rebalance_waits_for_the_checkpoint_being_written():
    world = _World()
    release = asyncio.Event()

    class _SlowView(_View):
        steps = 0

        def write_detached(self, limit: int | None = None) -> int:
            if not release.is_set():
                self.steps += 1  # (a writer that never lets the loop run would spin here)
                assert self.steps < 100_000, "the event loop never ran between steps"
                return 1  # not done yet: another step
            return super().write_detached(limit)

    checkpoint = Checkpoint(world, 0.01,  # type: ignore[arg-type]
                            lambda p: [_SlowView(world, p)], beside="on")

    async def main() -> None:
        await asyncio.sleep(0.02)
        await _one_batch(checkpoint, world, _event(4, 0))
        assert checkpoint.writing is not None
        now = asyncio.create_task(checkpoint.write_now())
        await asyncio.sleep(0.01)
        assert not now.done() and world.acked() == []
        release.set()
        assert await now == 0  # nothing held after the first: it wrote everything
        assert world.acked() == [(4, 0)]

    asyncio.run(main())


def test_off_the_stage_waits_for_its_checkpoint():
    """Off (a Checkpoint's default; auto decides so on a backlog), a checkpoint due after a
    batch is written before the stage reads its next batch, each view in one go."""
    from agents.checkpoint import CHUNK_KEYS

    world = _World()
    checkpoint = Checkpoint(world, 0.01,  # type: ignore[arg-type]
                            lambda p: [_View(world, p, keys=2 * CHUNK_KEYS + 1)])

    async def main() -> None:
        await asyncio.sleep(0.02)
        await _one_batch(checkpoint, world, _event(0, 0))
        assert checkpoint.writing is None and world.acked() == [(0, 0)]

    asyncio.run(main())
    assert [e for e in world.log if e[0] == "flush"] == [("flush", 0, 0)]  # one step


@pytest.mark.parametrize("highwater, beside", [(1 + 500 + 1, False), (1 + 500, True),
                                                (None, True)])
def test_auto_writes_beside_a_caught_up_stage_and_in_turn_while_it_catches_up(highwater,
                                                                              beside):
    """auto (the default): a checkpoint is written beside the stage unless more than
    `catching_up` events of its partitions are left to read past its latest event (a
    backlog, where writing beside cost throughput); a partition whose highwater is not
    known yet counts as caught up."""
    from agents.checkpoint import CHUNK_KEYS

    world = _World()
    world.consumer.highwater = lambda tp: {TP("norm", 2): highwater}.get(tp)
    checkpoint = Checkpoint(world, 0.01,  # type: ignore[arg-type]
                            lambda p: [_View(world, p, keys=2 * CHUNK_KEYS + 1)],
                            beside="auto", catching_up=500)

    async def main() -> None:
        await asyncio.sleep(0.02)
        await _one_batch(checkpoint, world, _event(2, 0))  # offset 0: highwater - 1 left
        if beside:
            assert checkpoint.writing is not None and world.acked() == []
            await checkpoint.finish_writing()
        else:
            assert checkpoint.writing is None
        assert world.acked() == [(2, 0)]

    asyncio.run(main())
    steps = [e for e in world.log if e[0] == "flush"]
    assert len(steps) == (3 if beside else 1)


def test_the_setting_is_auto_by_default_and_off_with_a_checkpoint_per_batch(monkeypatch):
    from types import SimpleNamespace as NS

    def made(**env: str) -> Checkpoint:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        app = NS(timer=lambda **kw: (lambda fn: fn))
        return Checkpoint.for_stage(app, config.load(), "test", lambda p: [])  # type: ignore

    default = made()
    assert default.beside == "auto" and default.catching_up == config.load().batch_max
    assert made(RTCC_CHECKPOINT_BESIDE="true").beside == "on"
    assert made(RTCC_CHECKPOINT_BESIDE="0").beside == "off"
    assert made(RTCC_CHECKPOINT_BESIDE="on", RTCC_CHECKPOINT_S="0").beside == "off"
    with pytest.raises(ValueError, match="RTCC_CHECKPOINT_BESIDE"):
        made(RTCC_CHECKPOINT_BESIDE="sometimes")
