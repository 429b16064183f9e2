"""Hotspots in event time: where one category of calls is unusually frequent, now (pure).

A hotspot is a (cell, category) pair whose count in a sliding window is improbably high
given what is usual there at that hour of the week. No Faust, no I/O, no wall clock: the
tracker reads the event times it is given and keeps its state in a mapping the caller
passes in (a Faust table in production), so the same events in the same order give the
same changes, also after a restart from the table's changelog.

Counting
    An event counts when its `source`, `kind` and `category` are configured (by default:
    CAD calls, counted once per call through their first lifecycle step `created` (crisis
    `requested` and community `reported` when those sources are enabled), every category
    but `other` and `proactive`) and it has a `cell`. Its res-9 cell is coarsened to `cell_resolution`
    (res 8, ~0.7 km2). Counts are kept per pair per `step_s` bucket (15 min); a window is
    the `window_s / step_s` consecutive buckets that end with the current one (1 h).
    Each bucket remembers the ids of the events it counted (up to `max_ids_per_bucket`),
    so an event delivered twice (at-least-once processing) is counted once.

Baseline
    The expected count of a window is the mean count of the same hour-of-week window in
    the `history_weeks` previous weeks, learnt from the stream. Only weeks the tracker
    has watched count (from its first event on), so a busy cell is not judged against
    weeks of zeros while the tracker warms up. The expected count is never below
    `baseline_floor`, which also stands for "no history yet". Weeks are 7 x 24 h of UTC,
    so after a daylight-saving change the baseline compares with the local hour next to
    the usual one for `history_weeks` weeks (at the edges of a busy hour, a little more or
    less sensitive); the hour-long window blunts it.

Decisions (significance is the one-sided Poisson tail P(X >= count | baseline))
    open      on every counted event, for the current window so far: count >= min_count
              and P < open_p. A partial window can only gain events, so this is
              conservative, and a hotspot opens at the call that makes it significant.
    escalate  the same check with P < escalate_p (level 2). Chosen over "twice the count
              that opened it" because it stays relative to the baseline (a busy cell
              needs many more calls to be as improbable) and does not depend on which
              call happened to open it.
    close     at each step boundary, on the window that has just completed: the hotspot
              cools while P >= close_p (the count is within the usual range), and closes
              after `close_after_steps` consecutive cool windows. Between open_p and
              close_p it stays open without any announcement (hysteresis), so counts
              that oscillate around the threshold do not flap.
    Each level is announced once per hotspot. A pair that heats up again after closing
    opens a new hotspot, with a new id (its opening window starts later).

Time
    The tracker's clock is the newest event time or watermark it has seen. Step boundaries
    up to the clock are processed in order (cooling, closing, expiry) by `observe` and by
    `advance` alike, before the event is counted, so the changes do not depend on how
    often the caller advances. A late event (older bucket than the clock's) is counted
    when its bucket is still kept, else dropped; see `HotspotTracker.last_outcome` and
    `HotspotTracker.counters`.

Store layout (all values are JSON plain data; every change is an assignment)
    {ns}hb:{cell}:{category}:{bucket start ISO}  {"n": count, "ids": [event ids]}
    {ns}hx:{bucket start ISO}                    ["{cell}:{category}", ...]
        pairs with a count in that bucket: the expiry index, so that expiring a bucket is
        a few deletions and never a scan of the store
    {ns}hs:{cell}:{category}                     the open hotspot of that pair
    {ns}ho                                       ["{cell}:{category}", ...] open pairs
    {ns}hm                                       {"bucket": current bucket start (epoch s),
                                                  "since": first bucket watched}
    Buckets are kept for `history_weeks` weeks plus one window (what the oldest baseline
    needs) and deleted as soon as the clock passes that. So the store holds at most
        kept_buckets x (pairs active in a bucket + 1) + open hotspots + 2
    values, where kept_buckets = (history_weeks x 1 week + window_s) / step_s (2692 by
    default), and never more `hb` values than counted events in that horizon.
    A counted event writes its bucket, plus the expiry index the first time its pair
    appears in that bucket; the meta value is written once per step, a hotspot's value
    when it opens, escalates, changes its cooling count or closes.

    Every key of a pair is written only while processing that pair's events, and all
    events of an H3 cell share its coarse area key (an H3 parent is a parent of all its
    children), so with a Faust table they stay on the partition of their events. The
    index and meta keys (`hx`, `ho`, `hm`) are the tracker's own: give each tracker that
    shares a table its own `namespace` (e.g. one per correlation partition, like the
    watermarks of `agents.correlate.ordering`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Mapping, MutableMapping

import h3

from schemas.envelope import CATEGORIES

WEEK_S = 7 * 24 * 3600

OPENED = "hotspot_opened"
ESCALATED = "hotspot_escalated"
CLOSED = "hotspot_closed"

# What `observe` did with an event (`HotspotTracker.last_outcome`, `.counters`).
OUTCOMES = (
    "counted",        # counted in the current bucket
    "late_counted",   # older than the current bucket, counted in its (still kept) bucket
    "late_dropped",   # older than the kept history: ignored
    "duplicate",      # this event id was already counted in its bucket
    "skipped_source", "skipped_kind", "skipped_category", "skipped_no_cell",
    "invalid",        # unreadable event_time or cell
)

ALL_CATEGORIES = CATEGORIES


# --- Poisson tail ---------------------------------------------------------------------------

def poisson_log_pmf(k: int, lam: float) -> float:
    """log P(X = k) for X ~ Poisson(lam)."""
    if lam <= 0.0:
        return 0.0 if k == 0 else -math.inf
    return k * math.log(lam) - lam - math.lgamma(k + 1)


def poisson_sf(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam), to ~1e-15 relative precision, without scipy.

    Above the mean, the tail is summed upward from P(X = k) (terms shrink by lam/i, so
    there is no cancellation and tiny tails keep their relative precision); at or below
    the mean it is 1 - P(X < k), which is then at least about one half.
    """
    if k <= 0:
        return 1.0
    if lam <= 0.0:
        return 0.0
    if k > lam:
        total, term, i = 1.0, 1.0, k
        while term > total * 1e-17:
            i += 1
            term *= lam / i
            total += term
        return min(1.0, math.exp(poisson_log_pmf(k, lam) + math.log(total)))
    below = math.fsum(math.exp(poisson_log_pmf(i, lam)) for i in range(k))
    return min(1.0, max(0.0, 1.0 - below))


# --- configuration --------------------------------------------------------------------------

@dataclass(frozen=True)
class HotspotConfig:
    """How hotspots are detected. The defaults suit a city's CAD stream."""

    cell_resolution: int = 8
    """H3 resolution of a hotspot's cell; events' res-9 cells are coarsened to it."""
    window_s: int = 3600
    """Length of the counting window (a multiple of step_s)."""
    step_s: int = 900
    """Bucket length: the window slides, and cooling is judged, every step_s."""
    history_weeks: int = 4
    """Weeks of history whose same hour-of-week window gives the baseline."""
    baseline_floor: float = 0.5
    """Lowest expected count per window: stands for "none usual" and "no history yet"."""
    min_count: int = 4
    """Never announce a hotspot with fewer events in its window."""
    open_p: float = 1e-3
    """Open when P(X >= count | baseline) falls below this."""
    escalate_p: float = 1e-6
    """Escalate to level 2 when P falls below this."""
    close_p: float = 0.05
    """A completed window is cool when P >= this (the count is within the usual range)."""
    close_after_steps: int = 2
    """Close after this many consecutive cool completed windows."""
    # Officer-initiated work measures enforcement, not incidents: never a hotspot.
    categories: tuple[str, ...] = tuple(
        c for c in ALL_CATEGORIES if c not in ("other", "proactive"))
    """Categories that are counted; a hotspot is per (cell, category)."""
    sources: tuple[str, ...] = ("cad",)
    """Sources that are counted (community reports are clustered elsewhere)."""
    kinds: tuple[str, ...] | None = ("created", "requested", "reported")
    """Lifecycle steps that are counted: the first step of each source, so that a call is
    counted once however many units it gets. None counts every step."""
    max_ids_per_bucket: int = 100
    """Event ids remembered per bucket for de-duplication (bounds a bucket's size)."""
    max_event_ids: int = 50
    """Event ids listed in a change (the newest of its window)."""

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.cell_resolution <= 15:
            problems.append("cell_resolution must be 0..15")
        if self.step_s <= 0 or self.window_s <= 0 or self.window_s % self.step_s:
            problems.append("window_s must be a positive multiple of step_s")
        if self.step_s > 0 and WEEK_S % self.step_s:
            problems.append("step_s must divide a week")
        if self.history_weeks < 1:
            problems.append("history_weeks must be >= 1")
        if not self.baseline_floor > 0:
            problems.append("baseline_floor must be > 0")
        if self.min_count < 1:
            problems.append("min_count must be >= 1")
        if not 0 < self.escalate_p <= self.open_p < self.close_p <= 1:
            problems.append("need 0 < escalate_p <= open_p < close_p <= 1")
        if self.close_after_steps < 1:
            problems.append("close_after_steps must be >= 1")
        if self.max_ids_per_bucket < 0 or self.max_event_ids < 0:
            problems.append("max_ids_per_bucket and max_event_ids must be >= 0")
        if problems:
            raise ValueError("invalid HotspotConfig: " + "; ".join(problems))

    @property
    def steps_per_window(self) -> int:
        return self.window_s // self.step_s

    @property
    def retention_s(self) -> int:
        """How far back buckets are kept: what the oldest baseline of a window needs."""
        return self.history_weeks * WEEK_S + self.window_s

    @property
    def kept_buckets(self) -> int:
        """Most buckets a pair can hold at once."""
        return self.retention_s // self.step_s


# --- changes --------------------------------------------------------------------------------

@dataclass(frozen=True)
class HotspotChange:
    """One announcement about a hotspot: opened, escalated or closed."""

    hotspot_id: str
    kind: str
    level: int
    cell: str
    category: str
    window_start: str
    window_end: str
    count: int
    baseline: float
    p_value: float
    event_time: str
    reason: str
    opened_time: str
    peak_count: int
    event_ids: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        return "closed" if self.kind == CLOSED else "open"

    def state(self) -> dict[str, Any]:
        """The hotspot's state for the SA update (plain JSON data)."""
        lat, lon = h3.cell_to_latlng(self.cell)
        ring = [[round(v_lon, 6), round(v_lat, 6)]
                for v_lat, v_lon in h3.cell_to_boundary(self.cell)]
        ring.append(ring[0])
        return {
            "hotspot_id": self.hotspot_id,
            "status": self.status,
            "level": self.level,
            "category": self.category,
            "cell": self.cell,
            "cell_resolution": h3.get_resolution(self.cell),
            "latitude": round(lat, 6),
            "longitude": round(lon, 6),
            "boundary": {"type": "Polygon", "coordinates": [ring]},
            "window_start": self.window_start,
            "window_end": self.window_end,
            "count": self.count,
            "baseline": self.baseline,
            "p_value": self.p_value,
            "opened_time": self.opened_time,
            "peak_count": self.peak_count,
            "decided_time": self.event_time,
        }


# --- the tracker ----------------------------------------------------------------------------

class HotspotTracker:
    """Counts events per (cell, category) and announces hotspots; state lives in `store`.

    `store` is any MutableMapping of str to JSON plain data; values read from it are never
    changed in place, every change is an assignment (what a Faust table logs).
    """

    def __init__(self, store: MutableMapping[str, Any], config: HotspotConfig | None = None,
                 namespace: str = "") -> None:
        self.store = store
        self.config = config or HotspotConfig()
        self.namespace = namespace
        self.counters: dict[str, int] = {name: 0 for name in OUTCOMES}
        self.last_outcome: str | None = None
        self._sources = frozenset(self.config.sources)
        self._kinds = None if self.config.kinds is None else frozenset(self.config.kinds)
        self._categories = frozenset(self.config.categories)
        only_cad = self._sources <= {"cad"}
        self._noun = ("call", "calls") if only_cad else ("event", "events")

    # -- public API ---------------------------------------------------------------------------

    def observe(self, event: Mapping[str, Any]) -> list[HotspotChange]:
        """Count one normalised event (a plain dict); return the changes it causes.

        Step boundaries up to the event's time are processed first (their closes come
        first in the list), then the event is counted and its pair's current window
        checked for opening and escalation.
        """
        try:
            ts = _epoch(event["event_time"])
        except (KeyError, TypeError, ValueError, OverflowError):
            return self._outcome("invalid", [])
        if not math.isfinite(ts):
            return self._outcome("invalid", [])
        changes = self._advance_to(ts)
        if event.get("source") not in self._sources:
            return self._outcome("skipped_source", changes)
        if self._kinds is not None and event.get("kind") not in self._kinds:
            return self._outcome("skipped_kind", changes)
        category = event.get("category")
        if category not in self._categories:
            return self._outcome("skipped_category", changes)
        cell = self._cell_of(event.get("cell"))
        if cell is None:
            return self._outcome("skipped_no_cell" if not event.get("cell") else "invalid",
                                 changes)

        cfg = self.config
        meta = self._meta()
        current = meta["bucket"]
        bucket = _bucket(ts, cfg.step_s)
        if bucket <= current - cfg.retention_s:
            return self._outcome("late_dropped", changes)
        pair = f"{cell}:{category}"
        event_id = event.get("event_id")
        if not self._add(pair, bucket, str(event_id) if event_id is not None else None):
            return self._outcome("duplicate", changes)
        outcome = "late_counted" if bucket < current else "counted"
        if bucket > current - cfg.window_s:  # in the current window
            changes.extend(self._check_rise(pair, cell, category, current, max(ts, current), meta))
        return self._outcome(outcome, changes)

    def advance(self, watermark: datetime | float) -> list[HotspotChange]:
        """Event time has moved on to `watermark` (a datetime, or epoch seconds).

        Processes the step boundaries up to it: judges the windows that completed for
        cooling, closes hotspots that stayed cool long enough, and expires buckets older
        than the history needs. A non-finite watermark (no origin holding) changes nothing.
        """
        ts = _epoch(watermark)
        if not math.isfinite(ts) or self._meta() is None:
            return []
        return self._advance_to(ts)

    def open_hotspots(self) -> list[dict[str, Any]]:
        """The open hotspots' stored values, by pair."""
        out = []
        for pair in self.store.get(self._open_key()) or ():
            value = self.store.get(self._hs_key(pair))
            if value is not None:
                out.append(dict(value))
        return out

    # -- keys -----------------------------------------------------------------------------------

    def _hb_key(self, pair: str, bucket: int) -> str:
        return f"{self.namespace}hb:{pair}:{_iso(bucket)}"

    def _hx_key(self, bucket: int) -> str:
        return f"{self.namespace}hx:{_iso(bucket)}"

    def _hs_key(self, pair: str) -> str:
        return f"{self.namespace}hs:{pair}"

    def _open_key(self) -> str:
        return f"{self.namespace}ho"

    def _meta_key(self) -> str:
        return f"{self.namespace}hm"

    # -- internals ------------------------------------------------------------------------------

    def _outcome(self, outcome: str, changes: list[HotspotChange]) -> list[HotspotChange]:
        self.last_outcome = outcome
        self.counters[outcome] += 1
        return changes

    def _cell_of(self, cell: Any) -> str | None:
        if not isinstance(cell, str) or not cell or not h3.is_valid_cell(cell):
            return None
        resolution = h3.get_resolution(cell)
        if resolution < self.config.cell_resolution:
            return None
        if resolution == self.config.cell_resolution:
            return cell
        return h3.cell_to_parent(cell, self.config.cell_resolution)

    def _meta(self) -> dict[str, int] | None:
        return self.store.get(self._meta_key())

    def _delete(self, key: str) -> None:
        if key in self.store:
            del self.store[key]

    def _advance_to(self, ts: float) -> list[HotspotChange]:
        cfg = self.config
        bucket = _bucket(ts, cfg.step_s)
        meta = self._meta()
        if meta is None:
            self.store[self._meta_key()] = {"bucket": bucket, "since": bucket}
            return []
        previous = meta["bucket"]
        if bucket <= previous:
            return []
        changes: list[HotspotChange] = []
        boundary = previous + cfg.step_s
        open_pairs = list(self.store.get(self._open_key()) or ())
        # Cooling and closing, boundary by boundary; a hotspot whose windows stay empty
        # closes within steps_per_window + close_after_steps, so this loop is short.
        while open_pairs and boundary <= bucket:
            for pair in sorted(open_pairs):
                changes.extend(self._on_boundary(pair, boundary, meta["since"]))
            open_pairs = list(self.store.get(self._open_key()) or ())
            boundary += cfg.step_s
        # Expiry: buckets that no baseline needs any more. Nothing newer than `previous`
        # exists, nothing at or before previous - retention is left.
        first = previous - cfg.retention_s + cfg.step_s
        last = min(bucket - cfg.retention_s, previous)
        for old in range(first, last + 1, cfg.step_s):
            pairs = self.store.get(self._hx_key(old))
            if pairs is None:
                continue
            for pair in pairs:
                self._delete(self._hb_key(pair, old))
            self._delete(self._hx_key(old))
        self.store[self._meta_key()] = {"bucket": bucket, "since": meta["since"]}
        return changes

    def _add(self, pair: str, bucket: int, event_id: str | None) -> bool:
        key = self._hb_key(pair, bucket)
        value = self.store.get(key)
        if value is None:
            self.store[key] = {"n": 1, "ids": [event_id] if event_id is not None else []}
            index = list(self.store.get(self._hx_key(bucket)) or ())
            index.append(pair)
            self.store[self._hx_key(bucket)] = index
            return True
        ids = list(value["ids"])
        if event_id is not None and event_id in ids:
            return False
        if event_id is not None and len(ids) < self.config.max_ids_per_bucket:
            ids.append(event_id)
        self.store[key] = {"n": value["n"] + 1, "ids": ids}
        return True

    def _window(self, pair: str, last_bucket: int) -> tuple[int, list[str]]:
        """Count and event ids of the window ending with `last_bucket`."""
        cfg = self.config
        count, ids = 0, []
        for i in range(cfg.steps_per_window - 1, -1, -1):
            value = self.store.get(self._hb_key(pair, last_bucket - i * cfg.step_s))
            if value is not None:
                count += value["n"]
                ids.extend(value["ids"])
        return count, ids

    def _window_count(self, pair: str, last_bucket: int) -> int:
        cfg = self.config
        total = 0
        for i in range(cfg.steps_per_window):
            value = self.store.get(self._hb_key(pair, last_bucket - i * cfg.step_s))
            if value is not None:
                total += value["n"]
        return total

    def _baseline(self, pair: str, last_bucket: int, since: int) -> tuple[float, int]:
        """Expected count of the window ending with `last_bucket`, and the weeks it rests on."""
        cfg = self.config
        window_start = last_bucket - cfg.window_s + cfg.step_s
        total, weeks = 0, 0
        for k in range(1, cfg.history_weeks + 1):
            if window_start - k * WEEK_S < since:
                break  # the tracker was not watching yet
            total += self._window_count(pair, last_bucket - k * WEEK_S)
            weeks += 1
        mean = total / weeks if weeks else 0.0
        return max(cfg.baseline_floor, mean), weeks

    def _check_rise(self, pair: str, cell: str, category: str, current: int, decided: float,
                    meta: Mapping[str, int]) -> list[HotspotChange]:
        cfg = self.config
        key = self._hs_key(pair)
        stored = self.store.get(key)
        if stored is not None and stored["level"] >= 2:
            return []
        count, ids = self._window(pair, current)
        if count < cfg.min_count:
            return []
        baseline, weeks = self._baseline(pair, current, meta["since"])
        p = poisson_sf(count, baseline)
        if stored is None and p >= cfg.open_p:
            return []
        if stored is not None and p >= cfg.escalate_p:
            return []
        window_start = current - cfg.window_s + cfg.step_s
        window_end = current + cfg.step_s
        decided_iso = _iso(decided)
        changes = []
        if stored is None:
            hotspot = {
                "id": f"hotspot:{cell}:{category}:{_iso(window_start)}",
                "cell": cell, "category": category, "level": 1,
                "opened_time": decided_iso, "open_count": count, "peak": count, "cool": 0,
            }
            changes.append(self._change(hotspot, OPENED, window_start, window_end, count,
                                        baseline, p, decided_iso, ids,
                                        self._rise_reason("", count, category, baseline, weeks, p)))
            open_pairs = sorted(set(self.store.get(self._open_key()) or ()) | {pair})
            self.store[self._open_key()] = open_pairs
        else:
            hotspot = dict(stored)
        if p < cfg.escalate_p:
            hotspot["level"] = 2
            hotspot["escalated_time"] = decided_iso
            changes.append(self._change(hotspot, ESCALATED, window_start, window_end, count,
                                        baseline, p, decided_iso, ids,
                                        self._rise_reason("Escalated: ", count, category,
                                                          baseline, weeks, p)))
        hotspot["peak"] = max(hotspot["peak"], count)
        self.store[key] = hotspot
        return changes

    def _on_boundary(self, pair: str, boundary: int, since: int) -> list[HotspotChange]:
        """Judge the window that completed at `boundary` for an open hotspot."""
        cfg = self.config
        key = self._hs_key(pair)
        stored = self.store.get(key)
        if stored is None:  # not expected: drop it from the index rather than loop on it
            self.store[self._open_key()] = [
                other for other in self.store.get(self._open_key()) or () if other != pair]
            return []
        last_bucket = boundary - cfg.step_s
        count, ids = self._window(pair, last_bucket)
        baseline, _weeks = self._baseline(pair, last_bucket, since)
        p = poisson_sf(count, baseline)
        hotspot = dict(stored)
        hotspot["peak"] = max(hotspot["peak"], count)
        hotspot["cool"] = hotspot["cool"] + 1 if p >= cfg.close_p else 0
        if hotspot["cool"] < cfg.close_after_steps:
            if hotspot != stored:
                self.store[key] = hotspot
            return []
        self._delete(key)
        open_pairs = [other for other in self.store.get(self._open_key()) or () if other != pair]
        self.store[self._open_key()] = open_pairs
        window_start = boundary - cfg.window_s
        noun = self._noun[count != 1]
        reason = (
            f"Back to usual: {count} {_label(hotspot['category'])} {noun} in the last "
            f"{_duration(cfg.window_s)} where {baseline:.1f} are usual, for "
            f"{hotspot['cool']} consecutive {_duration(cfg.step_s)} steps "
            f"(peak {hotspot['peak']} in {_duration(cfg.window_s)})"
        )
        return [self._change(hotspot, CLOSED, window_start, boundary, count, baseline, p,
                             _iso(boundary), [], reason)]

    def _rise_reason(self, prefix: str, count: int, category: str, baseline: float, weeks: int,
                     p: float) -> str:
        noun = self._noun[count != 1]
        usual = (f"{baseline:.1f} are usual" if weeks
                 else f"there is no history yet (assumed {baseline:g})")
        return (f"{prefix}{count} {_label(category)} {noun} in "
                f"{_duration(self.config.window_s)} where {usual} (p={_p(p)})")

    def _change(self, hotspot: Mapping[str, Any], kind: str, window_start: int, window_end: int,
                count: int, baseline: float, p: float, decided_iso: str, ids: list[str],
                reason: str) -> HotspotChange:
        limit = self.config.max_event_ids
        return HotspotChange(
            hotspot_id=hotspot["id"], kind=kind, level=hotspot["level"],
            cell=hotspot["cell"], category=hotspot["category"],
            window_start=_iso(window_start), window_end=_iso(window_end),
            count=count, baseline=baseline, p_value=p, event_time=decided_iso, reason=reason,
            opened_time=hotspot["opened_time"], peak_count=max(hotspot["peak"], count),
            event_ids=tuple(ids[-limit:]) if limit else (),
        )


# --- helpers --------------------------------------------------------------------------------

def _epoch(value: Any) -> float:
    """Epoch seconds of an ISO-8601 string, an aware or UTC-naive datetime, or a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    raise TypeError(f"not a time: {value!r}")


def _bucket(ts: float, step_s: int) -> int:
    return (math.floor(ts) // step_s) * step_s


def _iso(ts: float) -> str:
    if isinstance(ts, int):
        return _iso_int(ts)
    return _iso_any(ts)


@lru_cache(maxsize=16384)
def _iso_int(ts: int) -> str:
    return _iso_any(ts)


def _iso_any(ts: float) -> str:
    when = datetime.fromtimestamp(ts, tz=timezone.utc)
    if when.microsecond:
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _label(category: str) -> str:
    return category.replace("_", "-")


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _p(p: float) -> str:
    if p <= 0.0:
        return "<1e-300"
    if p >= 0.01:
        return f"{p:.2f}"
    mantissa, exponent = f"{p:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"
