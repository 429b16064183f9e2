"""How far ingest has got in each source partition, for the correlation stage's watermark.

Ingest writes a progress mark into every partition of the normalised topic, in line with
the events, so that correlation knows when every source has passed a moment of event time
(see agents/correlate/ordering.py). One mark message carries every source partition the
worker reads (`combined`): a correlation partition learns of an origin whose events go
elsewhere only from marks, so they go out often (RTCC_MARK_INTERVAL_S), and one message per
partition instead of one per origin keeps that cheap. The normalised topic's consumers
skip them (`is_mark`); `origin_marks` reads both forms (a mark per origin was the form
before 2026-11-30, which a worker of the previous version may still write).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

MARK_KEY = "~progress"


def is_mark(doc: Any) -> bool:
    return isinstance(doc, Mapping) and "mark" in doc


def combined(origins: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    """One mark message: every origin's progress, all as of `wall`."""
    return {"mark": "progress", "wall": wall, "origins": origins}


def origin_marks(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The per-origin marks in a mark message, each with its `wall`: of a combined one, or
    the message itself when it is a single origin's."""
    if "origins" not in doc:
        return [doc]
    return [{**mark, "wall": doc["wall"]} for mark in doc["origins"]]


@dataclass
class SourceProgress:
    started_wall: float
    max_ts: dict[str, float] = field(default_factory=dict)
    last_event_wall: dict[str, float] = field(default_factory=dict)
    last_offset: dict[str, int] = field(default_factory=dict)

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
        last = self.last_offset.get(origin)
        if highwater is None:
            return last is None and committed is None
        following = max(last + 1 if last is not None else 0, committed or 0)
        return following >= highwater

    def marks(self, highwaters: Mapping[str, int | None], wall: float,
              committed: Mapping[str, int | None] | None = None,
              polled: Mapping[str, float | None] | None = None) -> dict[str, Any]:
        """The mark message: an entry per origin this worker reads (`origins`), one with no
        events yet included.

        `committed`: the group's committed offset per origin (the next one to read);
        `polled`: the wall time of the fetch that gave each origin's highwater, so that a
        mark says as of when the partition was seen caught up (`caught_up_wall`).
        """
        committed, polled = committed or {}, polled or {}
        return combined([
            {"origin": origin, "max_ts": self.max_ts.get(origin),
             "last_event_wall": self.last_event_wall.get(origin, self.started_wall),
             "caught_up": self.caught_up(origin, highwaters[origin], committed.get(origin)),
             "caught_up_wall": polled.get(origin)}
            for origin in sorted(highwaters)
        ], wall)
