"""Response-time KPIs per (agency, district, priority) and event-time window. Pure: no I/O.

The incident-correlation engine calls `KpiAggregator.add` with a finished incident summary
when an incident closes or expires, and `KpiAggregator.advance` with its event-time
watermark; `advance` returns the `KpiRecord`s of the windows that are complete.

Measures, each in seconds over the incidents *received* in the window:

- received -> dispatched, dispatched -> on scene, received -> on scene (first unit's times):
  count, mean, p50, p90 and max. A measure is left out for an incident that lacks one of
  its two times (counted as `missing`), and excluded and counted when it is negative
  (`negative`, e.g. on scene before received) or longer than `max_duration_s` (`too_long`):
  an excluded duration is never averaged in. Zero is valid (an on-view call is received,
  dispatched and on scene at once). Each measure is judged on its own: a bad on-scene time
  does not remove the incident's valid received -> dispatched.
- crisis share: of the mental-health calls (`mental_health` is True), how many a crisis team
  answered (`crisis_team_responded` is True); `share` is None when there were none.

Percentiles are exact, by nearest rank over the window's values (the p-th percentile is the
smallest value with at least p % of the values at or below it), so p90 is a time that
actually happened and "90 % of calls were answered within p90" holds exactly, which is how
response-time standards (NFPA 1710 and the like) state their targets. Exact is affordable:
a window holds one district's calls of one priority for one hour, tens of values; a
bounded sketch would only add error.

State lives in a plain mapping that the engine backs with a Faust table: one key per
window (its `kpi_id`) plus one meta key, values are JSON-only (dicts, lists, str, int,
bool, None), durations are kept as integer milliseconds (exact sums, so the record does not
depend on the order of `add` calls), and every change is a fresh value assigned with
`store[key] = value` (nothing is mutated in place, since a Faust table logs assignments).

Windows are tumbling, aligned on the Unix epoch (whole UTC hours by default), and keyed by
the incident's received time (or, if that is absent, its first known step time).
Incidents are deduplicated by `subject_id` within a window: a second summary of the same
incident replaces the first (the engine processes at least once, so a replay after a crash
must not count an incident twice); a summary without `subject_id` cannot be deduplicated.

All incidents of one (agency, district) must reach the same aggregator: the normalised
stream is keyed by H3 area, so the engine should re-key the summaries by agency and
district (e.g. `group_by`) before this stage, or two workers would emit partial records
under one `kpi_id`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from agents.ingest.times import iso_utc

__all__ = ["AddOutcome", "CrisisShare", "DurationSummary", "KpiAggregator", "KpiConfig",
           "KpiRecord", "kpi_id"]

META_KEY = "_kpi_meta"
KEY_PREFIX = "kpi:"
MEASURES = ("received_to_dispatched", "dispatched_to_on_scene", "received_to_on_scene")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_COUNTERS = ("late_incidents", "late_dropped", "unplaceable", "replaced")

AddOutcome = Literal["added", "late", "late_dropped", "replaced", "unchanged", "unplaceable"]


@dataclass(frozen=True)
class KpiConfig:
    """How incidents are windowed and judged.

    window_s: tumbling window length, aligned on the epoch (3600: whole UTC hours).
    max_duration_s: a duration above this is absurd and excluded (`too_long`).
    allowed_lateness_s: a window is first emitted once the watermark reaches its end plus
        this. Incidents reach the aggregator when they *close*, long after they were
        received: in the SF Fire sample 1.4 % of incidents close more than 2 h after their
        hour ends, 0.4 % more than 3 h, none more than 4.6 h. 3 h balances a timely first
        record against revisions.
    revise_for_s: how long after its first emission a window's state is kept so that a late
        incident still gets in (by a revised record, `revision` + 1). 21 h keeps each window
        until a day after its end; 0 emits each window once and deletes it at once, and every
        late incident is then dropped (and counted).
    """

    window_s: int = 3600
    max_duration_s: int = 86_400
    allowed_lateness_s: int = 3 * 3600
    revise_for_s: int = 21 * 3600

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.max_duration_s <= 0:
            raise ValueError("window_s and max_duration_s must be positive")
        if self.allowed_lateness_s < 0 or self.revise_for_s < 0:
            raise ValueError("allowed_lateness_s and revise_for_s must not be negative")


@dataclass(frozen=True)
class DurationSummary:
    """One measure over a window, in seconds; the statistics are None when count is 0.

    count: durations summarised. missing: incidents lacking one of the two times.
    negative / too_long: durations excluded as impossible (< 0) or absurd (> max_duration_s).
    """

    count: int
    mean_s: float | None
    p50_s: float | None
    p90_s: float | None
    max_s: float | None
    missing: int
    negative: int
    too_long: int


@dataclass(frozen=True)
class CrisisShare:
    """Mental-health calls answered by a crisis team: numerator / denominator."""

    numerator: int
    denominator: int
    share: float | None


@dataclass(frozen=True)
class KpiRecord:
    """The KPIs of one (agency, district, priority) and window, for the KPI topic.

    `kpi_id` is the same for every revision of a window: key the topic by it (compacted) and
    the latest `revision` wins. `late_incidents` counts the incidents in this record that
    arrived after the window had first been due; `invalid_times` the step times that could
    not be read (treated as missing).
    """

    kpi_id: str
    window_start: str
    window_end: str
    agency_id: str
    district: str
    priority: int | None
    incidents: int
    received_to_dispatched: DurationSummary
    dispatched_to_on_scene: DurationSummary
    received_to_on_scene: DurationSummary
    crisis: CrisisShare
    invalid_times: int
    late_incidents: int
    revision: int

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (nested dicts for the summaries)."""
        return asdict(self)


class KpiAggregator:
    """Folds finished incidents into windowed KPI records; state in `store` (see module doc).

    Lateness: an incident is *late* when the watermark had already reached its window's end
    plus `allowed_lateness_s` (the window was emitted, or was due) when it arrived.

    - While the window's state is kept (up to `revise_for_s` after it was due) a late
      incident is added, and the next `advance` re-emits the whole window, corrected, with
      `revision` + 1 (or revision 0 if that key had no record yet). Records are emitted only
      when something changed: a replayed, identical summary does not cause a revision.
    - After that the state is gone: the incident is dropped and counted in `late_dropped`.

    Both kinds are counted in `late_incidents` (see `counters()`).
    """

    def __init__(self, store: MutableMapping[str, Any], config: KpiConfig | None = None) -> None:
        self.store = store
        self.config = config or KpiConfig()
        # When each window next needs a look, in watermark ms: (at, key), its deadline
        # while it waits to be emitted, its expiry once emitted. Entries may be stale (the
        # state decides). Built from the store at the first `advance`, so a restored
        # aggregator finds its windows; then `advance` reads only the windows that are due
        # instead of every open one (5-9 % of a worker's CPU at live rates, bench/NOTES.md).
        self._checks: list[tuple[int, str]] | None = None

    # ---------------------------------------------------------------- input

    def add(self, incident: Mapping[str, Any]) -> AddOutcome:
        """Fold one finished incident summary in; returns what happened to it."""
        cfg = self.config
        agency = incident.get("agency_id")
        received, bad_r = _ms(incident.get("received_time"))
        dispatched, bad_d = _ms(incident.get("dispatched_time"))
        on_scene, bad_o = _ms(incident.get("on_scene_time"))
        closed, bad_c = _ms(incident.get("closed_time"))
        anchor = next((t for t in (received, dispatched, on_scene, closed) if t is not None), None)
        if not agency or anchor is None:
            self._count("unplaceable")
            return "unplaceable"

        district = _label(incident.get("district"))
        priority = _priority(incident.get("priority"))
        window_ms = cfg.window_s * 1000
        start = anchor // window_ms * window_ms
        end = start + window_ms
        due = end + cfg.allowed_lateness_s * 1000
        watermark = self._meta()["watermark"]
        late = watermark is not None and watermark >= due
        if late and watermark >= due + cfg.revise_for_s * 1000:
            self._count("late_incidents", "late_dropped")
            return "late_dropped"

        key = kpi_id(str(agency), district, priority, start)
        stored = self.store.get(key)
        state = stored or {
            "agency_id": str(agency), "district": district, "priority": priority,
            "start": start, "end": end, "incidents": {}, "revision": -1, "dirty": True,
        }
        incidents = dict(state["incidents"])
        subject = incident.get("subject_id")
        subject = str(subject) if subject else f"?anon:{len(incidents)}"
        entry = {
            "rd": _diff(received, dispatched),
            "ds": _diff(dispatched, on_scene),
            "ro": _diff(received, on_scene),
            "mh": incident.get("mental_health") is True,
            "ct": incident.get("crisis_team_responded") is True,
            "bad": bad_r + bad_d + bad_o + bad_c,
        }
        previous = incidents.get(subject)
        if previous is not None and {k: v for k, v in previous.items() if k != "late"} == entry:
            return "unchanged"  # a replay of what is already counted
        entry["late"] = late
        incidents[subject] = entry
        self.store[key] = {**state, "incidents": incidents, "dirty": True}
        if self._checks is not None and (stored is None or not stored["dirty"]):
            heapq.heappush(self._checks, (due, key))  # a new window, or an emitted one to revise
        if previous is not None:
            self._count("replaced", *(["late_incidents"] if late else []))
            return "replaced"
        if late:
            self._count("late_incidents")
            return "late"
        return "added"

    def advance(self, watermark: datetime) -> list[KpiRecord]:
        """Emit the windows that are due at `watermark` and forget those past revision.

        A window is due when its end + `allowed_lateness_s` <= watermark: it is emitted then
        (revision 0), and again only if late incidents changed it (revision + 1), until its
        end + `allowed_lateness_s` + `revise_for_s` <= watermark, when its state is deleted.
        The watermark never moves back (an older one is ignored). Records come sorted by
        window start, then `kpi_id`.
        """
        cfg = self.config
        meta = self._meta()
        given = _ms(watermark)[0]
        if given is None:
            raise ValueError(f"not a watermark: {watermark!r}")
        wm = given if meta["watermark"] is None else max(meta["watermark"], given)
        if wm != meta["watermark"]:
            self.store[META_KEY] = {**meta, "watermark": wm}

        lateness, keep = cfg.allowed_lateness_s * 1000, cfg.revise_for_s * 1000
        checks = self._due_checks()
        keys: set[str] = set()
        while checks and checks[0][0] <= wm:
            keys.add(heapq.heappop(checks)[1])
        records: list[KpiRecord] = []
        for key in keys:
            state = self.store.get(key)
            if state is None:  # deleted since the check was planned
                continue
            due = state["end"] + lateness  # <= wm: a check is planned at due or later
            expired = wm >= due + keep
            if state["dirty"]:
                revision = state["revision"] + 1
                records.append(self._record(key, state, revision))
                if not expired:
                    self.store[key] = {**state, "revision": revision, "dirty": False}
            if expired:
                del self.store[key]
            else:
                heapq.heappush(checks, (due + keep, key))
        records.sort(key=lambda r: (r.window_start, r.kpi_id))
        return records

    def _due_checks(self) -> list[tuple[int, str]]:
        if self._checks is None:
            lateness = self.config.allowed_lateness_s * 1000
            self._checks = [(state["end"] + lateness, key) for key, state in self.store.items()
                            if key.startswith(KEY_PREFIX)]
            heapq.heapify(self._checks)
        return self._checks

    # ---------------------------------------------------------------- introspection

    @property
    def watermark(self) -> datetime | None:
        wm = self._meta()["watermark"]
        return None if wm is None else _EPOCH + wm * _MS

    def counters(self) -> dict[str, int]:
        """Totals since the store was created, for metrics: late_incidents (arrived after
        their window was due), late_dropped (of those, too late to revise), unplaceable (no
        agency or no time at all), replaced (a second summary of an incident), open_windows."""
        meta = self._meta()
        out = {name: meta[name] for name in _COUNTERS}
        out["open_windows"] = sum(1 for k in self.store.keys() if k.startswith(KEY_PREFIX))
        return out

    # ---------------------------------------------------------------- internals

    def _meta(self) -> dict[str, Any]:
        return self.store.get(META_KEY) or {"watermark": None, **{name: 0 for name in _COUNTERS}}

    def _count(self, *names: str) -> None:
        meta = self._meta()
        self.store[META_KEY] = {**meta, **{n: meta[n] + 1 for n in names}}

    def _record(self, key: str, state: Mapping[str, Any], revision: int) -> KpiRecord:
        # Everything below is computed from sorted or summed integers: independent of the
        # order in which incidents were added.
        entries = list(state["incidents"].values())
        max_ms = self.config.max_duration_s * 1000
        mental = [e for e in entries if e["mh"]]
        answered = sum(1 for e in mental if e["ct"])
        return KpiRecord(
            kpi_id=key,
            window_start=iso_utc(_EPOCH + state["start"] * _MS),
            window_end=iso_utc(_EPOCH + state["end"] * _MS),
            agency_id=state["agency_id"],
            district=state["district"],
            priority=state["priority"],
            incidents=len(entries),
            received_to_dispatched=_summary((e["rd"] for e in entries), max_ms),
            dispatched_to_on_scene=_summary((e["ds"] for e in entries), max_ms),
            received_to_on_scene=_summary((e["ro"] for e in entries), max_ms),
            crisis=CrisisShare(answered, len(mental), answered / len(mental) if mental else None),
            invalid_times=sum(e["bad"] for e in entries),
            late_incidents=sum(1 for e in entries if e["late"]),
            revision=revision,
        )


def kpi_id(agency: str, district: str, priority: int | None, start_ms: int) -> str:
    start = iso_utc(_EPOCH + start_ms * _MS)
    return f"{KEY_PREFIX}{agency}:{district}:{'unknown' if priority is None else priority}:{start}"


def _summary(values: Iterable[int | None], max_ms: int) -> DurationSummary:
    missing = negative = too_long = 0
    kept: list[int] = []
    for v in values:
        if v is None:
            missing += 1
        elif v < 0:
            negative += 1
        elif v > max_ms:
            too_long += 1
        else:
            kept.append(v)
    if not kept:
        return DurationSummary(0, None, None, None, None, missing, negative, too_long)
    kept.sort()
    n = len(kept)
    return DurationSummary(
        count=n,
        mean_s=round(sum(kept) / n / 1000, 3),
        p50_s=_nearest_rank(kept, 50) / 1000,
        p90_s=_nearest_rank(kept, 90) / 1000,
        max_s=kept[-1] / 1000,
        missing=missing,
        negative=negative,
        too_long=too_long,
    )


def _nearest_rank(ordered: list[int], pct: int) -> int:
    """The smallest value with at least pct % of the values <= it (rank ceil(pct*n/100))."""
    rank = max(1, -(-pct * len(ordered) // 100))
    return ordered[rank - 1]


def _ms(value: Any) -> tuple[int | None, int]:
    """(epoch milliseconds or None, 1 if the value was present but unreadable). A time
    without offset is read as UTC (the engine's times are UTC)."""
    if value is None or value == "":
        return None, 0
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None, 1
    if not isinstance(when, datetime):
        return None, 1
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - _EPOCH) // _MS, 0


def _diff(start: int | None, end: int | None) -> int | None:
    return None if start is None or end is None else end - start


def _label(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    return text or "unknown"


def _priority(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
