"""Event-time order for the correlation stage: watermarks and a reorder buffer (pure).

Correlation decisions (which call is the primary, which report links to which incident)
depend on the order in which events are applied. Arrival order on the normalised topic
depends on how fast each source partition was ingested, so it differs between a replay at
1 x and one at --max. Applying events in event-time order, once every source partition
("origin") has moved past them, makes the decisions depend on the data only.

How far each origin has got is known from the events themselves and from *progress marks*
that the ingest stage writes into every partition of the normalised topic, in line with the
events (so a mark is always read after the events it covers). A mark carries the origin's
highest event time, the ingest's wall clock, and whether ingest has read all there is in
it. An origin that is caught up and has produced nothing for `idle_s` (measured on that
wall clock as carried in the stream, not on this process's clock, so a lagging consumer
does not mistake a busy origin for an idle one) no longer holds the watermark back; that is
what lets the last events of a replay through. A backlog is never idle. Silence is known
only from an origin's current owner: a worker that stops reading an origin says so (a
`released` mark: it holds again until its next owner reports), a mark older than one
already observed changes nothing, and an origin whose marks stop while others' go on
holds again after idle_s (its owner died).

This view is part of a partition's state (`progress`, `resume`): the partition's next
owner, after a rebalance or a restart, carries on from it. Started blind, it would take an
origin whose ingest is itself moving between workers for one never heard of, stop waiting
for it after idle_s, and apply its events late, in another order than a clean run.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Iterable, Mapping

NEG_INF = -math.inf
POS_INF = math.inf


def event_ts(event: Mapping[str, Any]) -> float:
    """Epoch seconds of a normalised event's event_time."""
    return datetime.fromisoformat(event["event_time"]).timestamp()


def origin_of(event: Mapping[str, Any]) -> str:
    return f"{event.get('source_topic')}:{event.get('source_partition')}"


@dataclass
class _Origin:
    max_ts: float = NEG_INF  # highest event time seen from this origin
    last_event_wall: float | None = None  # ingest wall clock of its latest event
    first_known_wall: float | None = None  # stream wall clock when it was first heard of
    caught_up: bool = False  # ingest has read all there is in it: its silence may be idleness
    last_mark_wall: float | None = None  # ingest wall clock of its latest mark
    # The ingest wall clock at which `caught_up` was last known true: the fetch that showed
    # the partition's end (it can be older than the mark when ingest's loop was busy).
    caught_up_wall: float | None = None
    # The ingest wall clock of the latest fetch whose records ingest had all handled and sent
    # (so this stage has read their events): true also of a busy partition that is never
    # quite caught up. Unlike `caught_up`, an event does not undo it.
    read_wall: float | None = None


@dataclass
class Watermarks:
    """The event-time watermark of one correlation partition."""

    lateness_s: float = 5.0  # disorder tolerated within one origin, in event time
    idle_s: float = 5.0  # ingest wall seconds without events before an origin stops holding
    # An origin whose newest event time is this close to its ingest's clock is a live feed.
    live_window_s: float = 300.0
    expected: Iterable[str] = ()  # origins that hold the watermark until heard of or idle
    origins: dict[str, _Origin] = field(default_factory=dict)
    stream_wall: float | None = None  # latest ingest wall clock carried by a mark
    started_wall: float | None = None

    def __post_init__(self) -> None:
        for name in self.expected:
            self.origins.setdefault(name, _Origin())

    def observe_event(self, origin: str, ts: float) -> None:
        entry = self.origins.setdefault(origin, _Origin(first_known_wall=self.stream_wall))
        if ts > entry.max_ts:
            entry.max_ts = ts
        # An event is proof of life: the origin holds again until a mark written after it
        # (so knowing of this event) says otherwise. Without this, the first events after a
        # quiet spell would be applied in arrival order until the next mark.
        entry.caught_up = False
        if entry.first_known_wall is None:
            entry.first_known_wall = self.stream_wall

    def observe_mark(self, origin: str, max_ts: float | None, last_event_wall: float | None,
                     wall: float, caught_up: bool = True, as_of: float | None = None,
                     read_wall: float | None = None) -> None:
        """A progress mark of `origin`, written by ingest at `wall`; `caught_up` holds as of
        `as_of` (the fetch that saw the partition's end; `wall` when not given); every record
        appended before `read_wall` has been read."""
        if self.started_wall is None:
            self.started_wall = wall
        if self.stream_wall is None or wall > self.stream_wall:
            self.stream_wall = wall
        entry = self.origins.setdefault(origin, _Origin(first_known_wall=wall))
        if max_ts is not None and max_ts > entry.max_ts:
            entry.max_ts = max_ts
        if last_event_wall is not None and (entry.last_event_wall is None
                                            or last_event_wall > entry.last_event_wall):
            entry.last_event_wall = last_event_wall
        if entry.first_known_wall is None:
            entry.first_known_wall = wall
        if read_wall is not None and (entry.read_wall is None or read_wall > entry.read_wall):
            entry.read_wall = min(read_wall, wall)
        if entry.last_mark_wall is not None and wall < entry.last_mark_wall:
            # Older than what is known of the origin: written by a worker that has since
            # released it, or taken before a mark already observed. Its facts (event times,
            # what was read) still hold; its view of the partition's end is superseded, and
            # taken as news it would make a released origin idle again.
            return
        entry.caught_up = caught_up
        entry.last_mark_wall = wall
        entry.caught_up_wall = (min(as_of, wall) if as_of is not None else wall) if caught_up \
            else None

    def _holds(self, entry: _Origin) -> bool:
        if self.stream_wall is None:
            return True  # no mark yet: nothing is known to be idle
        if entry.first_known_wall is not None and not entry.caught_up:
            return True  # a backlog waiting to be read is not a quiet feed
        if (entry.last_mark_wall is not None
                and self.stream_wall - entry.last_mark_wall >= self.idle_s):
            # Other sources' marks go on, this one's stopped: its owner died or lost it
            # without saying so (kill -9). What it said of its silence is no longer news;
            # records appended since may wait for the next owner (bench/NOTES.md, 42).
            return True
        reference = entry.last_event_wall or entry.first_known_wall or self.started_wall
        # Silent for idle_s as of when ingest last *saw* the partition's end, not as of the
        # newest mark: a worker whose loop was busy for longer than idle_s (a large batch
        # elsewhere) has not fetched in that time, and its stale view is no evidence of
        # silence. Measured against the mark's clock, every origin looked idle after such a
        # stall, the watermark jumped to the end, and the events still arriving were late.
        as_of = entry.caught_up_wall if entry.caught_up_wall is not None else self.stream_wall
        return reference is None or as_of - reference < self.idle_s

    def _progress(self, entry: _Origin) -> float:
        """How far in event time an origin is known to have got.

        A caught-up *live* feed (its event times track its ingest's clock) vouches for event
        time up to the clock of its last mark: anything it sends later is stamped about
        then, give or take the lateness. Without this, one quiet live feed would hold every
        other feed's events back until it spoke or went idle. A replay of old data is not
        live, and progresses by its event times alone.
        A busy live feed is rarely caught up at the moment of a mark (records keep coming),
        but it has been read past an earlier fetch (`read_wall`), and vouches up to that.
        """
        seen_end = entry.caught_up_wall if entry.caught_up else None
        if entry.read_wall is not None and (seen_end is None or entry.read_wall > seen_end):
            seen_end = entry.read_wall
        if (seen_end is not None and entry.max_ts > NEG_INF
                and seen_end - entry.max_ts < self.live_window_s):
            return max(entry.max_ts, seen_end)
        return entry.max_ts

    def current(self) -> float:
        """Event times at or below this are complete: every holding origin has passed them."""
        holding = [self._progress(o) for o in self.origins.values() if self._holds(o)]
        if not holding:
            return POS_INF
        return min(holding) - self.lateness_s


def _finite(value: float) -> float | None:
    return None if value == NEG_INF else value  # JSON has no -inf


def progress(watermarks: Watermarks, buffer: "ReorderBuffer") -> dict[str, Any]:
    """How far a partition's ordering has got, as JSON: every origin's progress as the
    watermark knows it, and the event time released so far (what makes an event late)."""
    origins = {}
    for name, entry in watermarks.origins.items():
        saved = asdict(entry)
        saved["max_ts"] = _finite(entry.max_ts)
        origins[name] = saved
    return {"origins": origins, "stream_wall": watermarks.stream_wall,
            "started_wall": watermarks.started_wall,
            "released_ts": _finite(buffer.released_ts)}


def resume(record: Mapping[str, Any], watermarks: Watermarks,
           buffer: "ReorderBuffer") -> None:
    """Carry on from a `progress` record: the watermark and the buffer are where they were
    when it was written (the events since are read again and observed again).

    Tolerant of the version that wrote it: during a rolling upgrade a partition can move
    between workers whose `_Origin` differs. A field this version does not know is
    ignored; one it expects and the record lacks keeps its default."""
    known = {f.name for f in fields(_Origin)}
    for name, saved in record.get("origins", {}).items():
        entry = _Origin(**{k: v for k, v in saved.items() if k in known})
        if entry.max_ts is None:
            entry.max_ts = NEG_INF
        watermarks.origins[name] = entry
    watermarks.stream_wall = record.get("stream_wall")
    watermarks.started_wall = record.get("started_wall")
    released = record.get("released_ts")
    buffer.released_ts = NEG_INF if released is None else released


@dataclass(order=True)
class _Pending:
    ts: float
    event_id: str
    ghost: bool  # an event before its own ghost, when both reach one partition
    event: dict = field(compare=False)


def _store_key(event: dict) -> str:
    return f"{event['event_id']}~ghost" if event.get("ghost") else event["event_id"]


class ReorderBuffer:
    """Holds events until the watermark passes them; releases them in event-time order.

    Ties are broken by event id, then an event before its ghost copy, so the release order
    is a total order of the data.
    `store` (a Faust table in production) keeps what is held so that a restart loses
    nothing; the heap is rebuilt from it with `restore`.
    """

    def __init__(self, store: Any | None = None) -> None:
        self.heap: list[_Pending] = []
        self.store = store
        self.released_ts = NEG_INF  # event time of the last event released

    def restore(self, events: Iterable[dict]) -> None:
        for event in events:
            heapq.heappush(self.heap, _Pending(event_ts(event), event["event_id"],
                                               bool(event.get("ghost")), event))

    def __len__(self) -> int:
        return len(self.heap)

    def push(self, event: dict, ts: float) -> bool:
        """Hold an event; False when it is already late (the caller applies it at once)."""
        if ts < self.released_ts:
            return False
        ghost = bool(event.get("ghost"))
        heapq.heappush(self.heap, _Pending(ts, event["event_id"], ghost, event))
        if self.store is not None:
            self.store[_store_key(event)] = event
        return True

    def release(self, watermark: float) -> list[dict]:
        out = []
        while self.heap and self.heap[0].ts <= watermark:
            item = heapq.heappop(self.heap)
            if self.store is not None:
                self.store.pop(_store_key(item.event), None)
            self.released_ts = max(self.released_ts, item.ts)
            out.append(item.event)
        return out
