"""The replay's I/O: read the export, produce the planned events to Kafka, report progress.

Producing is batched: `send()` only appends to aiokafka's accumulator and returns a future,
so the player keeps up to `chunk` futures in flight and awaits them together, never one
broker round-trip per message. The producer is idempotent with acks=all, so a retried batch
cannot duplicate or reorder a key's events.
"""

from __future__ import annotations

import asyncio
import csv
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Protocol, TextIO

import orjson

from streams.replay.mapping import MappedEvent, MappedRow, map_row
from streams.replay.plan import Pacing, Plan, build, shifted
from streams.replay.profile import Profile, ProfileError, check_columns

COMPRESSIONS = ("none", "gzip")  # lz4/snappy/zstd need extra packages aiokafka does not ship


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested JSON objects become dotted columns: {"location": {"lat": 1}} -> location.lat."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{name}."))
        else:
            out[name] = v
    return out


def read_rows(profile: Profile, path: Path) -> list[dict[str, Any]]:
    """Every row of the export, checked against the columns the profile reads."""
    if not path.is_file():
        raise ProfileError(f"profile {profile.name!r}: data file {path} not found "
                           "(set RTCC_SHARED_DATA_DIR or pass --file)")
    if profile.format == "csv":
        with path.open(newline="", encoding=profile.encoding) as f:
            reader = csv.DictReader(f, delimiter=profile.delimiter)
            check_columns(profile, reader.fieldnames or [], path)
            return list(reader)
    text = path.read_text(encoding=profile.encoding)
    if profile.format == "jsonl":
        records = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    else:
        records = orjson.loads(text)
        for part in (profile.records_key or "").split(".") if profile.records_key else ():
            if not isinstance(records, dict) or part not in records:
                raise ProfileError(f"profile {profile.name!r}: records_key "
                                   f"{profile.records_key!r} not found in {path}")
            records = records[part]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ProfileError(f"profile {profile.name!r}: {path} is not a list of JSON objects "
                           "(set records_key to the list's path)")
    rows = [_flatten(r) for r in records]
    seen: dict[str, None] = {}
    for r in rows:  # exports omit null keys, so a column is missing only if no row has it
        seen.update(dict.fromkeys(r))
    check_columns(profile, seen, path)
    return rows


def map_rows(profile: Profile, rows: Iterable[dict[str, Any]]) -> list[MappedRow]:
    return [map_row(profile, row, i) for i, row in enumerate(rows)]


# --------------------------------------------------------------------------------------------
# Progress and summary
# --------------------------------------------------------------------------------------------


class Progress:
    """One `\\r`-rewritten line on a terminal, a plain line every `interval` s otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True,
                 interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.interval = 0.2 if self.tty else interval
        self.clock = clock
        self.start = clock()
        self.last = self.start

    def line(self, sent: int, event_time: str | None) -> str:
        elapsed = self.clock() - self.start
        rate = sent / elapsed if elapsed > 0 else 0.0
        pct = 100.0 * sent / self.total if self.total else 100.0
        where = f"  at {event_time}" if event_time else ""
        return f"replay {sent:,}/{self.total:,} ({pct:.0f}%)  {rate:,.0f} ev/s{where}"

    def update(self, sent: int, event_time: str | None = None, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        if self.tty:
            self.stream.write("\r" + self.line(sent, event_time).ljust(100)[:120])
        else:
            self.stream.write(self.line(sent, event_time) + "\n")
        self.stream.flush()

    def close(self, sent: int) -> None:
        if self.enabled:
            self.update(sent, force=True)
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()


@dataclass
class ReplaySummary:
    """What a replay did: printed at the end, returned for tests and callers."""

    profile: str
    topic: str
    rows_read: int
    rows_replayed: int
    events_planned: int
    events_sent: int
    rows_with_unparseable: int
    unparseable_fields: dict[str, int] = field(default_factory=dict)  # field -> rows
    elapsed_s: float = 0.0  # from the first send to the last acknowledgement
    connect_s: float = 0.0  # producer start-up (bootstrap, metadata, producer id) before it
    first_event_time: str | None = None
    last_event_time: str | None = None
    pacing: str = ""

    @property
    def events_per_s(self) -> float:
        return self.events_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def render(self) -> str:
        lines = [
            f"replay {self.profile} -> {self.topic} ({self.pacing})",
            f"  rows read            {self.rows_read:,}",
            f"  rows replayed        {self.rows_replayed:,}",
            f"  events sent          {self.events_sent:,} of {self.events_planned:,}",
            f"  rows with unparseable fields  {self.rows_with_unparseable:,}"
            + "".join(f"\n    {name:22} {count:,}"
                      for name, count in sorted(self.unparseable_fields.items())),
            f"  event times          {self.first_event_time} .. {self.last_event_time}",
            f"  elapsed              {self.elapsed_s:.2f} s (+ {self.connect_s:.2f} s connecting)",
            f"  throughput           {self.events_per_s:,.0f} events/s",
        ]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Producing
# --------------------------------------------------------------------------------------------


class Producer(Protocol):
    """The part of AIOKafkaProducer the player uses (a fake in tests)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(self, topic: str, value: bytes | None = None,
                   key: bytes | None = None) -> Awaitable[Any]: ...


def kafka_producer(bootstrap: str, compression: str = "none") -> Producer:
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        client_id="rtcc-replay",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
        compression_type=None if compression == "none" else compression,
        request_timeout_ms=30_000,
    )


class ReplayFailed(RuntimeError):
    """A send failed; `summary` says how far the replay got."""

    def __init__(self, cause: BaseException, summary: ReplaySummary) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.summary = summary


@dataclass(frozen=True)
class ReplayOptions:
    """Everything the CLI can change about a replay besides the profile."""

    pacing: Pacing = field(default_factory=Pacing)
    limit: int | None = None
    offset_rows: int = 0
    time_shift: str | datetime | None = None
    repeat: int = 1
    shift_ids: bool = True
    compression: str = "none"
    progress: bool = True
    chunk: int = 2000  # send() futures awaited together
    # Each message's times moved so that its event time is the second it is sent in: a live
    # feed at any pacing (`--live-clock`).
    live_clock: bool = False


def prepare(profile: Profile, path: Path, options: ReplayOptions,
            now: datetime | None = None) -> Plan:
    """Read, map and plan: everything but Kafka (used by --dry-run too)."""
    rows = map_rows(profile, read_rows(profile, path))
    return build(profile, rows, offset_rows=options.offset_rows, limit=options.limit,
                 repeat=options.repeat, shift_ids=options.shift_ids,
                 time_shift=options.time_shift, now=now)


def encode(event: MappedEvent) -> tuple[bytes, bytes]:
    """(key, value) bytes of one message: UTF-8 key, orjson value (the topics' codec)."""
    return event.key.encode("utf-8"), orjson.dumps(event.message)


def on_live_clock(plan: Plan, event: MappedEvent, now: float) -> MappedEvent:
    """`event` with every time moved by one offset, so that its event time (the profile's
    order) is the whole second `now` falls in: what a source system would stamp on an event
    it sends as it happens. Its other times keep their distance to it."""
    at = event.times.get(plan.profile.order_by)
    if at is None:
        return event
    return shifted(plan.profile, event, math.floor(now) - at.timestamp(), 0.0, "")


async def produce(plan: Plan, topic: str, producer: Producer, options: ReplayOptions,
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                  clock: Callable[[], float] = time.monotonic,
                  progress_stream: TextIO | None = None,
                  wall: Callable[[], float] = time.time) -> ReplaySummary:
    """Send the plan's events, paced; return the summary. Stops at the first failed send."""
    total = len(plan)
    progress = Progress(total, progress_stream, options.progress, clock=clock)
    pacing = options.pacing
    first_at = plan.first_at
    pending: list[Awaitable[Any]] = []
    sent = 0
    first_time = last_time = None
    time_field = plan.profile.order_by
    connect_start = start = clock()

    def summary() -> ReplaySummary:
        return ReplaySummary(
            profile=plan.profile.name, topic=topic, rows_read=plan.rows_read,
            rows_replayed=plan.rows_selected, events_planned=total, events_sent=sent,
            rows_with_unparseable=plan.rows_with_unparseable,
            unparseable_fields=dict(plan.unparseable), elapsed_s=clock() - start,
            connect_s=start - connect_start, first_event_time=first_time,
            last_event_time=last_time, pacing=pacing.describe(),
        )

    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # release the half-open client before reporting
        raise
    start = clock()  # pacing and throughput count from the first send, not the connection
    progress.start = progress.last = start
    try:
        prev_due = 0.0
        for index, event in enumerate(plan):
            due = max(prev_due, pacing.due(index, event.at, first_at))
            prev_due = due
            wait = start + due - clock()
            if wait > 0.002:  # below ~2 ms a sleep costs more than it paces
                if pending and wait > 0.05:  # settle what is out before a real pause
                    await asyncio.gather(*pending)
                    sent += len(pending)
                    pending.clear()
                progress.update(sent, last_time)
                await sleep(wait)
            if options.live_clock:
                event = on_live_clock(plan, event, wall())
            key, value = encode(event)
            pending.append(await producer.send(topic, value=value, key=key))
            stamp = event.message.get(time_field)
            if first_time is None:
                first_time = stamp
            last_time = stamp
            if len(pending) >= options.chunk:
                await asyncio.gather(*pending)
                sent += len(pending)
                pending.clear()
                progress.update(sent, last_time)
        if pending:
            await asyncio.gather(*pending)
            sent += len(pending)
            pending.clear()
    except Exception as exc:
        raise ReplayFailed(exc, summary()) from exc
    finally:
        await producer.stop()
        progress.close(sent)
    return summary()


async def produce_to_kafka(plan: Plan, topic: str, bootstrap: str,
                           options: ReplayOptions) -> ReplaySummary:
    """`produce` with a real producer (aiokafka needs it created inside the running loop)."""
    return await produce(plan, topic, kafka_producer(bootstrap, options.compression), options)


def replay(profile: Profile, path: Path, topic: str, bootstrap: str,
           options: ReplayOptions) -> ReplaySummary:
    """Read, plan and produce one replay (blocking)."""
    return asyncio.run(produce_to_kafka(prepare(profile, path, options), topic, bootstrap,
                                        options))


def dry_run(plan: Plan, out: TextIO, limit: int | None = None) -> int:
    """Print the planned messages as JSON lines {"key": ..., "value": ...}; return count."""
    count = 0
    for event in plan:
        if limit is not None and count >= limit:
            break
        out.write(orjson.dumps({"key": event.key, "value": event.message}).decode() + "\n")
        count += 1
    return count
