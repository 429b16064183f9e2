"""What a replay sends and when: ordering, selection, repeats, time shift and pacing. Pure.

Kept apart from the player so that every decision about the stream (which rows, in which
order, with which ids and times, at which moment) is a plain function of the data and the
options, testable without a broker or a clock.

Ordering. Rows are ordered by their replay time (the earliest `order_by` time among their
events), stably, so rows with equal times keep their file order. A row whose time did not
parse takes the time of the row before it in the file (the first rows, of the first row
that has one): it is replayed where it appeared instead of at one end of the stream, and it
adds no gap to the pacing. Events of the selected rows are then ordered the same way by
their own `order_by` time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Iterator, Sequence

from streams.replay.mapping import MappedEvent, MappedRow, iso
from streams.replay.profile import Profile

PACING_MODES = ("speed", "rate", "max")


# --------------------------------------------------------------------------------------------
# Pacing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pacing:
    """speed N: event-time gaps divided by N. rate N: N events per second. max: no waits."""

    mode: str = "speed"
    value: float = 60.0

    def __post_init__(self) -> None:
        if self.mode not in PACING_MODES:
            raise ValueError(f"pacing mode must be one of {PACING_MODES}, got {self.mode!r}")
        if self.mode != "max" and not self.value > 0:
            raise ValueError(f"--{self.mode} must be > 0, got {self.value}")

    def due(self, index: int, at: float, first_at: float) -> float:
        """Seconds after the start at which event `index` (replay time `at`) is due.

        Rate pacing is a token schedule: event i is due at i/N, so a sender that fell behind
        (a slow broker, a GC pause) catches up in a burst instead of drifting for good.
        """
        if self.mode == "max":
            return 0.0
        if self.mode == "rate":
            return index / self.value
        return max(0.0, at - first_at) / self.value

    def describe(self) -> str:
        return "as fast as possible" if self.mode == "max" else (
            f"{self.value:g}x real time" if self.mode == "speed" else f"{self.value:g} events/s")


def schedule(times: Sequence[float], pacing: Pacing) -> list[float]:
    """Due offsets (seconds from the start) of events with replay times `times` (sorted)."""
    if not times:
        return []
    first = times[0]
    due = [pacing.due(i, t, first) for i, t in enumerate(times)]
    for i in range(1, len(due)):  # never earlier than the previous event
        due[i] = max(due[i], due[i - 1])
    return due


# --------------------------------------------------------------------------------------------
# Ordering and selection
# --------------------------------------------------------------------------------------------


def row_times(rows: Sequence[MappedRow]) -> list[float]:
    """Replay time of each row: its earliest parsed time, else the previous row's."""
    own = [min((e.sort_time for e in r.events if e.sort_time is not None), default=None)
           for r in rows]
    fallback = next((t for t in own if t is not None), 0.0)
    out = []
    for t in own:
        fallback = t if t is not None else fallback
        out.append(fallback)
    return out


def order_rows(rows: Sequence[MappedRow]) -> list[MappedRow]:
    """Rows in replay order (stable), each event's `at` set to its own time or its row's."""
    times = row_times(rows)
    ranked = sorted(range(len(rows)), key=times.__getitem__)
    out = []
    for i in ranked:
        row = rows[i]
        events = tuple(replace(e, at=e.sort_time if e.sort_time is not None else times[i])
                       for e in row.events)
        out.append(replace(row, events=events))
    return out


def events_of(rows: Sequence[MappedRow]) -> list[MappedEvent]:
    """The events of ordered rows, call-level steps folded to their first row, by `at`."""
    seen: set[str] = set()
    out = []
    for row in rows:
        for event in row.events:
            if event.once_key is not None:
                if event.once_key in seen:
                    continue
                seen.add(event.once_key)
            out.append(event)
    out.sort(key=lambda e: e.at)  # stable: a row's steps keep their profile order on ties
    return out


# --------------------------------------------------------------------------------------------
# Repeats and time shift
# --------------------------------------------------------------------------------------------


def shifted(profile: Profile, event: MappedEvent, time_delta: float, at_delta: float,
            suffix: str) -> MappedEvent:
    """A copy of `event` with its times moved by `time_delta` seconds (the replay time by
    `at_delta`) and its identity fields suffixed; the key is rebuilt from the new fields."""
    if not time_delta and not at_delta and not suffix:
        return event
    message = dict(event.message)
    times = dict(event.times)
    if time_delta:
        delta = timedelta(seconds=time_delta)
        zone = profile.zone
        for name, when in event.times.items():  # shift in UTC: exact across DST changes
            moved = (when.astimezone(timezone.utc) + delta).astimezone(zone)
            times[name] = moved
            message[name] = iso(moved, zone)
    if suffix:
        for name in profile.source.id_fields:
            if message.get(name) is not None:
                message[name] = f"{message[name]}{suffix}"
    sort = times.get(profile.order_by)
    return replace(event, key=profile.key.render(message), message=message, times=times,
                   sort_time=sort.timestamp() if sort is not None else None,
                   at=event.at + at_delta)


def repeat_period(events: Sequence[MappedEvent]) -> float:
    """How far each repeat is moved: the data's span plus one mean gap between events, so
    that the repeats join up with the same rhythm as the data (1 s for a single instant)."""
    if len(events) < 2:
        return 1.0
    span = events[-1].at - events[0].at
    return span + span / (len(events) - 1) if span > 0 else 1.0


def parse_time_shift(text: str | None) -> str | datetime | None:
    """`now`, `end` or an ISO-8601 instant (naive = UTC) for `--time-shift`."""
    if text is None or text in ("now", "end"):
        return text
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--time-shift takes now, end or an ISO-8601 time, got {text!r}") \
            from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def time_shift_delta(mode: str | datetime | None, first_at: float, last_at: float,
                     now: datetime) -> float:
    """Whole seconds to add to every time (so shifted times stay to the second): `now` puts
    the first event at now, `end` the last one, an instant puts the first event there."""
    if mode is None:
        return 0.0
    if mode == "now":
        return float(round(now.timestamp() - first_at))
    if mode == "end":
        return float(round(now.timestamp() - last_at))
    assert isinstance(mode, datetime)
    return float(round(mode.timestamp() - first_at))


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """The events of one replay, in order; repeats are generated lazily on iteration."""

    profile: Profile
    base: list[MappedEvent]
    rows_read: int
    rows_selected: int
    unparseable: Counter[str] = field(default_factory=Counter)  # field -> rows
    rows_with_unparseable: int = 0
    repeat: int = 1
    shift_ids: bool = True
    time_delta: float = 0.0
    period: float = 0.0

    def __len__(self) -> int:
        return len(self.base) * self.repeat

    def __iter__(self) -> Iterator[MappedEvent]:
        for k in range(self.repeat):
            at_delta = k * self.period
            time_delta = self.time_delta + (at_delta if self.shift_ids else 0.0)
            suffix = f"#{k}" if k and self.shift_ids else ""
            for event in self.base:
                yield shifted(self.profile, event, time_delta, at_delta, suffix)

    @property
    def first_at(self) -> float:
        return self.base[0].at if self.base else 0.0


def build(profile: Profile, rows: Sequence[MappedRow], *, offset_rows: int = 0,
          limit: int | None = None, repeat: int = 1, shift_ids: bool = True,
          time_shift: str | datetime | None = None, now: datetime | None = None) -> Plan:
    """Order the mapped rows, select `offset_rows`..`+limit`, fold call-level steps, and set
    up repeats (ids suffixed `#k`, times moved k periods, unless `shift_ids` is False: then
    the copies are identical messages, for de-duplication tests) and the time shift."""
    if offset_rows < 0 or (limit is not None and limit < 0) or repeat < 1:
        raise ValueError("offset and limit must be >= 0, repeat >= 1")
    ordered = order_rows(rows)
    end = None if limit is None else offset_rows + limit
    selected = ordered[offset_rows:end]
    base = events_of(selected)
    unparseable: Counter[str] = Counter()
    for row in selected:
        unparseable.update(row.unparseable)
    period = repeat_period(base)
    delta = 0.0
    if time_shift is not None and base:
        last_at = base[-1].at + ((repeat - 1) * period if shift_ids else 0.0)
        delta = time_shift_delta(time_shift, base[0].at, last_at,
                                 now or datetime.now(timezone.utc))
    return Plan(profile, base, rows_read=len(rows), rows_selected=len(selected),
                unparseable=unparseable,
                rows_with_unparseable=sum(1 for r in selected if r.unparseable),
                repeat=repeat, shift_ids=shift_ids, time_delta=delta, period=period)
