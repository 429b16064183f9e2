"""A stage's table writes, and the acks of the events behind them, once per checkpoint.

A stateful stage (correlation, KPI) works on write-behind views of its tables
(agents/correlate/write_behind.py). Flushing them after every batch cost a table write, a
RocksDB put and a changelog message per changed key per batch, and a producer flush (a
broker round trip) per batch to keep the stage's outputs ahead of its state. On a live
feed a batch holds one or two events, so that was most of the stage's messages: each
event's reorder-buffer entry was written and then deleted through the changelog, an
incident was logged again at every call about it (bench/NOTES.md, section 10).

A checkpoint instead holds the events' acks and flushes the views at most every
RTCC_CHECKPOINT_S. What it must keep is the at-least-once contract of the offsets:

- An event is acked only by the checkpoint that wrote its state, so Faust never commits
  the offset of an event whose state exists only in memory. A crash replays every event
  since the last checkpoint against the state as of that checkpoint, and the engine
  publishes their updates again (consumers drop repeats by update id).
- Before the views are written the producer is flushed: every update of a held event is
  in Kafka before the state that says it was published (else a crash between the two
  would replay the event as "unchanged" and its update would be lost).
- The changelog records of the views are handed to the producer, all at once, before the
  acks (streams/changelog.py): Faust's commit flushes the producer before it commits, so
  no offset is committed ahead of the changelog of its state.
- Held messages are released together, in the order they were read, with no await in
  between: Faust's commit never sees a later offset acked before an earlier one (its gap
  check lets a single unacked message at the committed offset through).
- A rebalance or a shutdown waits for every read message to be acked
  (`Consumer.wait_empty`): the app writes every checkpoint first (streams.app.App), once
  the streams are paused and the batch in hand is done.
- A checkpoint never writes the state of a half-handled batch: the agent's body and the
  writers exclude each other through `lock`, and a body that did not complete (a
  cancellation, an error of the producer path, which also crashes the app) leaves the
  checkpoint refusing to write; its events stay unacked and are read again after a
  restart.

**Written beside the stage (RTCC_CHECKPOINT_BESIDE).** At 1,000 events/s a correlation
checkpoint wrote ~2,500 keys: ~75 ms of table writes and ~35 ms handing their changelog
records to the producer, once a second, with the stage (and, for the writes, every agent
of the worker) waiting; the events that arrived meanwhile are part of the latency's tail
(bench/NOTES.md section 33). With the setting on, a checkpoint that falls due after a batch
takes its state at that point, synchronously (each partition's views `detach` their
pending writes, and the held events go with them), and a task writes it while the stage
goes on: the views `CHUNK_KEYS` keys at a time with the event loop running in between,
then the changelog, then the acks. Reads see the detached state until it is written
(agents/correlate/write_behind.py). Everything above still holds for each checkpoint's own
events and state: the producer is flushed before its views are written, its changelog
records reach the producer before its acks, and its acks are released together. One
checkpoint is written at a time; the next is due only once it is done, and a rebalance or
a shutdown waits for it (`write_now`). On a backlog it costs: with the loop free during
a checkpoint the stages run in smaller batches, and throughput was ~13 % lower. So by
default (`auto`) a checkpoint is written beside the stage only while the stage is caught
up: when more than RTCC_BATCH_MAX events of its partitions are still to be read (the
highwaters past its latest events), the stage is catching up and waits for its checkpoint
as with the setting off. Measured, at a checkpoint: 0-80 events to read on a live feed of
1,000 events/s, 1,700-9,800 on a backlog (bench/NOTES.md section 34).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import faust

from agents.batching import current_event
from streams import metrics
from streams.config import Settings

log = logging.getLogger(__name__)

# One partition's views with their pending writes set aside (`WriteBehind.detach`), to be
# written by `write_detached`.
Detach = Callable[[int], Sequence["Detached"]]
CHUNK_KEYS = 200  # keys written between turns of the event loop (~6 ms on a 2-core box)


class Detached(Protocol):
    def write_detached(self, limit: int | None = None) -> int: ...


@dataclass
class _State:
    """What one checkpoint writes: each partition's detached views, with the partition's
    latest event (its changelog partition), and the events whose state they are."""

    partitions: list[tuple[faust.types.EventT, Sequence[Detached]]]
    held: list[faust.types.Message]


class Checkpoint:
    @classmethod
    def for_stage(cls, app: faust.App, settings: Settings, stage: str,
                  detach: Detach) -> "Checkpoint":
        """The checkpoint of a stage, with the timer that writes it when the stage is idle
        (none when every batch writes one)."""
        checkpoint = cls(app, settings.checkpoint_interval_s, detach,
                         beside=settings.checkpoint_beside, catching_up=settings.batch_max,
                         stage=stage)
        if checkpoint.interval_s > 0:
            app.timer(interval=checkpoint.interval_s, name=f"{stage}.checkpoint")(
                checkpoint.tick)
        return checkpoint

    def __init__(self, app: faust.App, interval_s: float, detach: Detach,
                 beside: str = "off", catching_up: int = 500, stage: str = "") -> None:
        self.app = app
        self.interval_s = interval_s
        self.stage = stage
        # on, off or auto (see above); never with a checkpoint per batch (interval 0).
        self.beside = beside if interval_s > 0 else "off"
        self.catching_up = catching_up  # events left to read beyond which auto waits
        self.detach = detach
        self.lock = asyncio.Lock()
        self.held: list[faust.types.Message] = []
        self.last_event: dict[int, faust.types.EventT] = {}  # partition -> its latest event
        self.written_at = time.monotonic()
        self.interrupted = False  # a batch body did not complete: its state is partial
        self.reported = False
        self.writing: asyncio.Future | None = None  # a checkpoint being written beside
        hooks = getattr(app, "before_wait_empty", None)
        if hooks is not None:  # streams.app.App: written before a rebalance or a shutdown
            hooks.append(self.write_now)

    @asynccontextmanager
    async def batch(self, events: Sequence[faust.types.EventT]) -> AsyncIterator[None]:
        """The body of one batch: its events are held, and a checkpoint is taken after it
        when due. A body that is cancelled or raises leaves the state partial; one that
        raises (the agents catch each event's errors, so only the producer path can)
        crashes the app: a worker that can no longer checkpoint would hold every later
        event in memory, unacked, so it stops and restarts from the last checkpoint."""
        async with self.lock:
            self.hold(events)
            self.interrupted = True
            try:
                yield
            except Exception as exc:
                await self.app.crash(exc)
                raise
            self.interrupted = False
            if self.due():
                if self.write_beside():
                    self.start()
                else:
                    await self.write()

    def hold(self, events: Sequence[faust.types.EventT]) -> None:
        """Keep a batch's events unacked until a checkpoint has written their state."""
        for event in events:
            event.message.incref()
            self.held.append(event.message)
            self.last_event[event.message.partition] = event

    def write_beside(self) -> bool:
        """Whether the checkpoint due now is written beside the stage (counted by way)."""
        if self.beside == "auto":
            beside = self.to_read() <= self.catching_up
        else:
            beside = self.beside == "on"
        metrics.CHECKPOINTS.labels(self.stage, "beside" if beside else "in_turn").inc()
        return beside

    def to_read(self) -> int:
        """Events of the stage's partitions still to be read: each highwater past the
        partition's latest event held (partitions with none since the last checkpoint are
        not looked at)."""
        consumer = self.app.consumer
        left = 0
        for event in self.last_event.values():
            message = event.message
            highwater = consumer.highwater(message.tp)
            if highwater is not None:
                left += max(0, highwater - message.offset - 1)
        return left

    def due(self) -> bool:
        return bool(self.held) and self.writing is None and \
            time.monotonic() - self.written_at >= self.interval_s

    def take(self) -> _State | None:
        """The state to write and the events behind it, as of now; the caller holds `lock`
        and no checkpoint is being written. None if there is nothing to write, or if a
        batch was interrupted (its state is partial)."""
        self.written_at = time.monotonic()
        if not self.held:
            return None
        if self.interrupted:
            if not self.reported:
                self.reported = True
                log.error("checkpoint: a batch was interrupted; its %d events and all after "
                          "them stay unacked, to be read again after a restart",
                          len(self.held))
            return None
        last_event, self.last_event = self.last_event, {}
        partitions = [(event, self.detach(partition)) for partition, event in last_event.items()]
        held, self.held = self.held, []
        return _State(partitions, held)

    async def _write(self, state: _State, chunk: int | None) -> None:
        await self.app.producer.flush()  # the outputs of its events are in Kafka first
        for event, views in state.partitions:
            with current_event(event):  # table writes go to this partition's changelog
                for view in views:
                    while view.write_detached(chunk) > 0:
                        await asyncio.sleep(0)  # the other agents' turn
        changelog = getattr(self.app, "changelog", None)  # streams.app.App's: see there
        if changelog is not None:
            await changelog.send()
        consumer = self.app.consumer
        for message in state.held:
            message.ack(consumer)  # the final reference acks the offset (see `batches`)

    def start(self, chunk: int | None = CHUNK_KEYS) -> int:
        """Take the checkpoint and write it in a task of its own (the caller holds `lock`);
        returns how many events it will ack. The task is not cancelled with whoever waits
        for it: a checkpoint taken is written, or the worker stops."""
        state = self.take()
        if state is None:
            return 0
        self.writing = asyncio.ensure_future(self._write_task(state, chunk))
        return len(state.held)

    async def _write_task(self, state: _State, chunk: int | None) -> None:
        try:
            await self._write(state, chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. the producer: as a failed batch body does
            log.exception("checkpoint: writing failed")
            await self.app.crash(exc)
        finally:
            self.writing = None

    async def write(self) -> int:
        """Write the views and ack the held events, each view in one go, after the
        checkpoint being written beside (if any); the caller holds `lock`. Returns how many
        events were acked by this one."""
        await self.finish_writing()
        acked = self.start(chunk=None)
        await self.finish_writing()
        return acked

    async def finish_writing(self) -> None:
        writing = self.writing
        if writing is not None:
            await asyncio.shield(writing)

    async def tick(self) -> None:
        """The timer's turn: a checkpoint if due, so that an idle stage still acks its
        events; returns once it is written."""
        if self.due():
            async with self.lock:
                if self.due():
                    self.start(CHUNK_KEYS if self.write_beside() else None)
        await self.finish_writing()

    async def write_now(self) -> int:
        """Write whatever is held, once the batch in hand is done (a rebalance, a stop)."""
        async with self.lock:
            return await self.write()
