"""How far ingest has got in each source partition, for the correlation stage's watermark.

Ingest writes a progress mark into every partition of the normalised topic, in line with
the events, so that correlation knows when every source has passed a moment of event time
(see agents/correlate/ordering.py). One mark message carries every source partition the
worker reads (`combined`): a correlation partition learns of an origin whose events go
elsewhere only from marks, so they go out often (RTCC_MARK_INTERVAL_S), and one message per
partition instead of one per origin keeps that cheap. The normalised topic's consumers
skip them (`is_mark`); `origin_marks` reads both forms (a mark per origin was the form
before 2026-11-30, which a worker of the previous version may still write).

A correlation partition releases an event once it knows every source is past it, and a
source whose next events go to other partitions tells it so only through marks: with a
timer alone, such an event waited for the next tick (up to RTCC_MARK_INTERVAL_S). While
events flow the mark also rides on them: the first message of an ingest batch to each
normalised partition carries, in a header (`MarkCarrier`), the mark as of the batch's
start, which covers every event sent before it, as a mark message in its place would
(bench/NOTES.md, section 26).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import orjson

MARK_KEY = "~progress"
MARK_HEADER = "rtcc-progress"


def is_mark(doc: Any) -> bool:
    return isinstance(doc, Mapping) and "mark" in doc


def combined(origins: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    """One mark message: every origin's progress, all as of `wall`."""
    return {"mark": "progress", "wall": wall, "origins": origins}


def released(origins: list[str], wall: float) -> dict[str, Any]:
    """The mark a worker writes for the source partitions it stops reading (revoked, or
    shutting down): it no longer vouches for them. Until their next owner's marks say
    otherwise they hold the watermark (caught_up False), whatever idleness this worker
    reported before: records appended after its last fetch are read by no one until the
    handover completes, and another worker's later events must not overtake them
    (bench/NOTES.md, section 42)."""
    return combined([{"origin": origin, "max_ts": None, "last_event_wall": None,
                      "caught_up": False, "caught_up_wall": None, "read_wall": None}
                     for origin in sorted(origins)], wall)


def origin_marks(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The per-origin marks in a mark message, each with its `wall`: of a combined one, or
    the message itself when it is a single origin's."""
    if "origins" not in doc:
        return [doc]
    return [{**mark, "wall": doc["wall"]} for mark in doc["origins"]]


def carried_mark(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None
                 ) -> dict[str, Any] | None:
    """The mark message a normalised event carries in its headers, if any."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        if name == MARK_HEADER:
            return orjson.loads(value)
    return None


class MarkCarrier:
    """One batch's mark, serialised once and handed to the first message of the batch to
    each normalised partition. The mark must be taken before the batch's own events are
    handled: it then covers only events already with the producer, which go out ahead of
    the message carrying it."""

    __slots__ = ("headers", "carried")

    def __init__(self, mark: Mapping[str, Any]) -> None:
        self.headers = [(MARK_HEADER, orjson.dumps(mark))]
        self.carried: set[int] = set()

    def headers_for(self, partition: int) -> list[tuple[str, bytes]] | None:
        if partition in self.carried:
            return None
        self.carried.add(partition)
        return self.headers


# Recent fetches remembered per source partition (`SourceProgress.fetches`): a busy
# partition is read past one of the last few, never further behind (bench/NOTES.md, 31).
FETCHES_KEPT = 16


@dataclass
class SourceProgress:
    started_wall: float
    max_ts: dict[str, float] = field(default_factory=dict)
    last_event_wall: dict[str, float] = field(default_factory=dict)
    last_offset: dict[str, int] = field(default_factory=dict)
    # Per origin, (highwater, wall time of the fetch that gave it) of recent fetches, oldest
    # first. A partition read past a fetch's highwater has had every record appended before
    # that fetch handled, though newer records may wait. While records keep coming the
    # consumer's latest fetch is mostly ahead of what ingest has handled, so "caught up"
    # with the latest was rarely true, and a live source vouched for nothing but its
    # events' times, to the second (bench/NOTES.md, section 31).
    fetches: dict[str, deque] = field(default_factory=dict)

    def observe(self, origin: str, ts: float | None, wall: float, offset: int) -> None:
        """A message of `origin` was handled; `ts` is its event time when it was valid."""
        self.last_event_wall[origin] = wall
        self.last_offset[origin] = offset
        if ts is not None and ts > self.max_ts.get(origin, float("-inf")):
            self.max_ts[origin] = ts

    def caught_up(self, origin: str, highwater: int | None, committed: int | None = None) -> bool:
        """Nothing left to read in the partition: only then may its silence mean idle (a
        backlog that ingest has not reached yet is not a quiet feed).

        The next offset to handle is the one after the last handled here, or the group's
        committed offset when that is further: after a restart or a rebalance nothing has
        been handled here yet (or only long ago, before another worker owned the partition),
        and reading resumes at the committed offset. Without it a partition read to its end
        before a restart never counted as caught up again, and held the watermark forever.
        """
        if highwater is None:
            return self.last_offset.get(origin) is None and committed is None
        return self._following(origin, committed) >= highwater

    def _following(self, origin: str, committed: int | None) -> int:
        last = self.last_offset.get(origin)
        return max(last + 1 if last is not None else 0, committed or 0)

    def read_past(self, origin: str, highwater: int | None, polled: float | None,
                  committed: int | None = None) -> float | None:
        """The wall time of the latest fetch of `origin` whose highwater ingest has read
        past (every record appended before it handled), None when none is known; remembers
        this fetch for the marks to come."""
        seen = self.fetches.setdefault(origin, deque(maxlen=FETCHES_KEPT))
        if highwater is not None and polled is not None and (not seen
                                                              or seen[-1][1] < polled):
            seen.append((highwater, polled))
        following = self._following(origin, committed)
        newest = None  # highwaters only grow: the fetches read past are the oldest ones
        while seen and seen[0][0] <= following:
            newest = seen.popleft()
        if newest is None:
            return None
        seen.appendleft(newest)  # the next mark may have read past nothing newer
        return newest[1]

    def marks(self, highwaters: Mapping[str, int | None], wall: float,
              committed: Mapping[str, int | None] | None = None,
              polled: Mapping[str, float | None] | None = None) -> dict[str, Any]:
        """The mark message: an entry per origin this worker reads (`origins`), one with no
        events yet included.

        `committed`: the group's committed offset per origin (the next one to read);
        `polled`: the wall time of the fetch that gave each origin's highwater, so that a
        mark says as of when the partition was seen caught up (`caught_up_wall`).
        `read_wall`: the latest fetch read past (`read_past`), also while a busy partition's
        latest fetch is ahead of what ingest has handled and it is not caught up: a live
        source vouches for event time up to it (agents/correlate/ordering.py).
        """
        committed, polled = committed or {}, polled or {}
        entries = []
        for origin in sorted(highwaters):
            highwater, at, start = highwaters[origin], polled.get(origin), committed.get(origin)
            entries.append({"origin": origin, "max_ts": self.max_ts.get(origin),
                            "last_event_wall": self.last_event_wall.get(origin,
                                                                        self.started_wall),
                            "caught_up": self.caught_up(origin, highwater, start),
                            "caught_up_wall": at,
                            "read_wall": self.read_past(origin, highwater, at, start)})
        return combined(entries, wall)
