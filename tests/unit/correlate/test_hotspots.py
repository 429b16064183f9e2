"""Hotspot detection in event time: counting, baseline, levels, hysteresis, bounded state."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import MutableMapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal, getcontext

import h3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.correlate.hotspots import (
    CLOSED, ESCALATED, OPENED, WEEK_S, HotspotChange, HotspotConfig, HotspotTracker,
    poisson_sf,
)

UTC = timezone.utc
# Real Milwaukee places, as the ingest stage would cell them (H3 res 9).
DOWNTOWN = h3.latlng_to_cell(43.0389, -87.9065, 9)      # City Hall area
RIVERWEST = h3.latlng_to_cell(43.0747, -87.8810, 9)
NORTH_SIDE = h3.latlng_to_cell(43.1127987, -87.9567415, 9)  # 5237 N 35th St
HOT = h3.cell_to_parent(DOWNTOWN, 8)

TUESDAY = datetime(2018, 5, 1, tzinfo=UTC)  # 2018-05-01 was a Tuesday


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Feed:
    """Builds normalised events with unique ids and feeds them to a tracker."""

    def __init__(self, tracker: HotspotTracker | None = None, **config):
        self.tracker = tracker or HotspotTracker({}, HotspotConfig(**config))
        self.n = 0
        self.log: list[HotspotChange] = []

    def event(self, when: datetime, cell: str = DOWNTOWN, category: str = "violent",
              source: str = "cad", kind: str = "created", event_id: str | None = None) -> dict:
        self.n += 1
        return {
            "event_id": event_id or f"{source}:MPD:{self.n}",
            "source": source, "kind": kind, "category": category,
            "subject_id": f"{source}:MPD:{self.n}",
            "event_time": iso(when), "cell": cell,
        }

    def observe(self, when: datetime, **fields) -> list[HotspotChange]:
        changes = self.tracker.observe(self.event(when, **fields))
        self.log.extend(changes)
        return changes

    def burst(self, start: datetime, count: int, every_s: int = 60,
              **fields) -> list[HotspotChange]:
        out = []
        for i in range(count):
            out.extend(self.observe(start + timedelta(seconds=i * every_s), **fields))
        return out

    def advance(self, when: datetime) -> list[HotspotChange]:
        changes = self.tracker.advance(when)
        self.log.extend(changes)
        return changes


def kinds(changes):
    return [c.kind for c in changes]


def quiet_history(feed: Feed, start: datetime, days: int) -> None:
    """One violent call a day at 03:00 and one property call at 09:30, downtown."""
    for day in range(days):
        feed.observe(start + timedelta(days=day, hours=3))
        feed.observe(start + timedelta(days=day, hours=9, minutes=30), category="property")


# --- Poisson tail ---------------------------------------------------------------------------

def exact_sf(k: int, lam: float) -> Decimal:
    getcontext().prec = 420
    lam_d = Decimal(lam)
    term, below = Decimal(1), Decimal(0)
    for i in range(k):
        if i:
            term = term * lam_d / i
        below += term
    return 1 - (-lam_d).exp() * below


def test_poisson_known_values():
    assert poisson_sf(0, 3.0) == 1.0
    assert poisson_sf(-2, 3.0) == 1.0
    assert poisson_sf(1, 0.0) == 0.0
    assert poisson_sf(1, 2.0) == pytest.approx(1 - math.exp(-2.0), rel=1e-14)
    # P(X >= 5 | 0.5) = 1 - e^-0.5 (1 + 0.5 + 0.125 + 0.5^3/6 + 0.5^4/24)
    closed = 1 - math.exp(-0.5) * (1 + 0.5 + 0.125 + 0.125 / 6 + 0.0625 / 24)
    assert poisson_sf(5, 0.5) == pytest.approx(closed, rel=1e-9)
    assert poisson_sf(400, 0.5) > 0.0 or poisson_sf(400, 0.5) == 0.0  # no exception
    assert 0.0 < poisson_sf(300, 250.0) < 0.01


@settings(max_examples=150, deadline=None)
@given(k=st.integers(0, 400), lam=st.floats(0.01, 300.0))
def test_poisson_tail_matches_exact_arithmetic(k, lam):
    exact = exact_sf(k, lam)
    got = poisson_sf(k, lam)
    assert 0.0 <= got <= 1.0
    if exact > Decimal("1e-290"):
        assert abs(Decimal(got) - exact) <= exact * Decimal("1e-9") + Decimal("1e-15")


@settings(max_examples=100, deadline=None)
@given(k=st.integers(0, 300), lam=st.floats(0.01, 200.0))
def test_poisson_tail_is_monotone(k, lam):
    assert poisson_sf(k + 1, lam) <= poisson_sf(k, lam)
    assert poisson_sf(k, lam) <= poisson_sf(k, lam * 1.5) + 1e-12


# --- opening, escalation, closing -----------------------------------------------------------

def test_quiet_history_then_burst_opens_exactly_one_hotspot():
    feed = Feed()
    quiet_history(feed, TUESDAY, days=14)
    assert feed.log == []
    burst_at = TUESDAY + timedelta(days=14, hours=14)  # Tue 2018-05-15 14:00, usually quiet
    changes = feed.burst(burst_at, 6, every_s=120)
    assert kinds(changes) == [OPENED]
    opened = changes[0]
    assert opened.count == 5  # P(X>=4 | 0.5) = 1.8e-3 is not enough, P(X>=5) = 1.7e-4 is
    assert opened.event_time == "2018-05-15T14:08:00Z"  # the fifth call
    assert opened.hotspot_id == f"hotspot:{HOT}:violent:2018-05-15T13:15:00Z"
    assert (opened.window_start, opened.window_end) == ("2018-05-15T13:15:00Z",
                                                        "2018-05-15T14:15:00Z")
    assert opened.level == 1 and opened.cell == HOT and opened.category == "violent"
    assert opened.baseline == 0.5 and opened.p_value == pytest.approx(poisson_sf(5, 0.5))
    assert opened.reason == "5 violent calls in 1 h where 0.5 are usual (p=2e-4)"
    assert len(opened.event_ids) == 5
    assert feed.tracker.counters["counted"] == 28 + 6


def test_no_history_is_said_so():
    feed = Feed()
    changes = feed.burst(TUESDAY, 5)
    assert kinds(changes) == [OPENED]
    assert "no history yet" in changes[0].reason


def test_bigger_burst_escalates_once():
    feed = Feed()
    quiet_history(feed, TUESDAY, days=7)
    changes = feed.burst(TUESDAY + timedelta(days=7, hours=14), 20, every_s=30)
    assert kinds(changes) == [OPENED, ESCALATED]
    opened, escalated = changes
    assert opened.hotspot_id == escalated.hotspot_id
    first_below = next(k for k in range(1, 50) if poisson_sf(k, 0.5) < 1e-6)
    assert escalated.count == first_below == 8
    assert escalated.level == 2 and escalated.p_value < 1e-6
    assert escalated.reason.startswith("Escalated: 8 violent calls in 1 h")
    # Even more calls announce nothing more.
    assert feed.burst(TUESDAY + timedelta(days=7, hours=14, minutes=11), 10, every_s=10) == []


def test_cooling_closes_after_the_hysteresis_steps_and_not_before():
    feed = Feed()
    burst_at = TUESDAY + timedelta(hours=14)
    assert kinds(feed.burst(burst_at, 6, every_s=100)) == [OPENED]
    hotspot_id = feed.log[0].hotspot_id
    # Windows ending 14:15 .. 15:00 still hold the burst.
    assert feed.advance(burst_at + timedelta(minutes=59, seconds=59)) == []
    assert feed.advance(burst_at + timedelta(hours=1)) == []
    # 14:15-15:15 is the first cool window: one step is not enough.
    assert feed.advance(burst_at + timedelta(hours=1, minutes=15)) == []
    assert feed.advance(burst_at + timedelta(hours=1, minutes=29, seconds=59)) == []
    closed = feed.advance(burst_at + timedelta(hours=1, minutes=30))
    assert kinds(closed) == [CLOSED]
    c = closed[0]
    assert c.hotspot_id == hotspot_id and c.level == 1 and c.peak_count == 6
    assert c.event_time == "2018-05-01T15:30:00Z"
    assert (c.window_start, c.window_end, c.count) == ("2018-05-01T14:30:00Z",
                                                       "2018-05-01T15:30:00Z", 0)
    assert c.reason.startswith("Back to usual: 0 violent calls in the last 1 h")
    assert c.state()["status"] == "closed"
    assert feed.advance(burst_at + timedelta(days=1)) == []
    assert feed.tracker.open_hotspots() == []


def test_a_warm_window_restarts_the_cooling():
    feed = Feed()
    burst_at = TUESDAY + timedelta(hours=14)
    feed.burst(burst_at, 6, every_s=100)
    assert feed.advance(burst_at + timedelta(hours=1, minutes=15)) == []  # cool 1
    # 3 calls at 15:20: below min_count, but P(X>=3 | 0.5) = 0.014 < close_p: warm.
    assert feed.burst(burst_at + timedelta(hours=1, minutes=20), 3) == []
    # Every window holding 15:20 is warm (15:30 .. 16:15), then two cool ones.
    assert feed.advance(burst_at + timedelta(hours=2, minutes=30)) == []  # cool 1 at 16:30
    closed = feed.advance(burst_at + timedelta(hours=2, minutes=45))
    assert kinds(closed) == [CLOSED] and closed[0].event_time == "2018-05-01T16:45:00Z"


def test_observe_alone_closes_at_the_same_time_as_advance():
    """Closes depend on the data, not on how often the caller advances."""
    a, b = Feed(), Feed()
    burst_at = TUESDAY + timedelta(hours=14)
    for feed in (a, b):
        feed.burst(burst_at, 6, every_s=100)
    for minutes in range(0, 24 * 60, 5):
        a.advance(burst_at + timedelta(minutes=minutes))
    a.observe(burst_at + timedelta(days=1), category="property")
    b.observe(burst_at + timedelta(days=1), category="property")
    assert a.log == b.log and kinds(a.log) == [OPENED, CLOSED]


def test_oscillating_counts_do_not_flap():
    # One-bucket windows, so that a window alternates between hot and cool.
    feed = Feed(window_s=900, step_s=900)
    start = TUESDAY + timedelta(hours=10)
    for i in range(12):
        if i % 2 == 0:
            feed.burst(start + timedelta(minutes=15 * i), 6, every_s=60)
        feed.advance(start + timedelta(minutes=15 * (i + 1)))
    assert kinds(feed.log) == [OPENED]  # hot, cool, hot, cool, ... never two cool in a row
    feed.advance(start + timedelta(minutes=15 * 14))
    assert kinds(feed.log) == [OPENED, CLOSED]
    feed.burst(start + timedelta(hours=5), 6)
    assert kinds(feed.log) == [OPENED, CLOSED, OPENED]
    first, _, second = feed.log
    assert first.hotspot_id != second.hotspot_id


def test_counts_hovering_at_the_threshold_are_announced_once():
    feed = Feed()
    start = TUESDAY + timedelta(hours=8)
    # 4 or 5 calls per hour for 6 hours: around open_p, never within close_p.
    for i in range(24):
        feed.observe(start + timedelta(minutes=15 * i + 1))
        if i % 3 == 0:
            feed.observe(start + timedelta(minutes=15 * i + 2))
        feed.advance(start + timedelta(minutes=15 * (i + 1)))
    assert kinds(feed.log) == [OPENED]
    feed.advance(start + timedelta(hours=12))
    assert kinds(feed.log) == [OPENED, CLOSED]
    assert len({c.hotspot_id for c in feed.log}) == 1


def test_escalated_hotspot_closes_at_its_level():
    feed = Feed()
    feed.burst(TUESDAY, 10, every_s=30)
    feed.advance(TUESDAY + timedelta(hours=3))
    assert kinds(feed.log) == [OPENED, ESCALATED, CLOSED]
    assert feed.log[-1].level == 2 and feed.log[-1].peak_count == 10


# --- baseline -------------------------------------------------------------------------------

def test_baseline_from_previous_weeks_suppresses_a_usually_busy_hour():
    feed = Feed()
    friday = datetime(2018, 5, 4, 22, tzinfo=UTC)
    minutes = (0, 7, 15, 22, 30, 37, 45, 52)
    feed.observe(TUESDAY, category="property")  # the tracker is watching from Tuesday on

    def friday_night(week: int) -> list[HotspotChange]:
        out = []
        for m in minutes:
            out.extend(feed.observe(friday + timedelta(weeks=week, minutes=m)))
        feed.advance(friday + timedelta(weeks=week, hours=4))
        return out

    first = friday_night(0)
    # No history yet: the first busy Friday is news (8 against 0.5: p=6e-8, escalated).
    assert kinds(first) == [OPENED, ESCALATED]
    for week in (1, 2, 3):
        assert friday_night(week) == []
    # The same 8 calls at the same hour on a usually quiet Tuesday are a hotspot.
    tuesday = datetime(2018, 5, 29, 22, tzinfo=UTC)
    tue = []
    for m in minutes:
        tue.extend(feed.observe(tuesday + timedelta(minutes=m)))
    assert kinds(tue) == [OPENED, ESCALATED]
    assert tue[0].baseline == 0.5 and "0.5 are usual" in tue[0].reason
    feed.advance(tuesday + timedelta(hours=3))
    # And the fifth busy Friday, with four weeks of Fridays behind it, is not.
    assert friday_night(4) == []
    assert {c.window_start[:10] for c in feed.log if c.kind == OPENED} == {"2018-05-04",
                                                                          "2018-05-29"}


def test_baseline_only_counts_weeks_the_tracker_watched():
    """A busy hour seen for one week is judged against that week, not against 4 weeks of
    zeros from before the tracker started."""
    friday = datetime(2018, 5, 4, 22, tzinfo=UTC)
    for first_watched in (TUESDAY, friday + timedelta(minutes=-30)):
        feed = Feed()
        feed.observe(first_watched, category="property")
        for week in (0, 1):
            for m in range(0, 60, 6):  # 10 calls
                feed.observe(friday + timedelta(weeks=week, minutes=m))
        assert [c.window_start[:10] for c in feed.log if c.kind == OPENED] == ["2018-05-04"]
    # A week only partly watched is no history: its zeros would understate the usual.
    feed = Feed()
    for week in (0, 1):
        for m in range(0, 60, 6):
            feed.observe(friday + timedelta(weeks=week, minutes=m))
    assert [c.window_start[:10] for c in feed.log if c.kind == OPENED] == ["2018-05-04",
                                                                          "2018-05-11"]


def test_min_count_is_respected():
    feed = Feed(baseline_floor=0.01)
    # Two calls against 0.01 expected are already improbable (p=5e-5): still not enough.
    assert feed.burst(TUESDAY, 3) == []
    changes = feed.observe(TUESDAY + timedelta(minutes=4))
    assert kinds(changes) == [OPENED, ESCALATED] and changes[0].count == 4

    feed = Feed(min_count=6)
    assert feed.burst(TUESDAY, 5) == []  # p=1.7e-4 < open_p, but 5 < 6
    assert kinds(feed.observe(TUESDAY + timedelta(minutes=6))) == [OPENED]


# --- what counts ----------------------------------------------------------------------------

def test_only_configured_sources_kinds_categories_and_located_events_count():
    feed = Feed()
    t = TUESDAY + timedelta(hours=1)
    feed.observe(t, source="community", kind="reported")
    assert feed.tracker.last_outcome == "skipped_source"
    feed.observe(t, kind="dispatched")
    assert feed.tracker.last_outcome == "skipped_kind"
    feed.observe(t, category="other")
    assert feed.tracker.last_outcome == "skipped_category"
    feed.observe(t, cell=None)
    assert feed.tracker.last_outcome == "skipped_no_cell"
    feed.observe(t, cell="not-a-cell")
    assert feed.tracker.last_outcome == "invalid"
    assert feed.tracker.observe({"event_id": "x", "event_time": "yesterday"}) == []
    assert feed.tracker.last_outcome == "invalid"
    assert not any(k.startswith("hb:") for k in feed.tracker.store)

    # Many units dispatched to one call count once, through its `created` step.
    feed = Feed()
    feed.observe(t)
    for _ in range(10):
        feed.observe(t + timedelta(minutes=1), kind="dispatched")
    assert feed.log == [] and feed.tracker.counters["counted"] == 1

    feed = Feed(sources=("cad", "community"))
    changes = feed.burst(t, 5, source="community", kind="reported", category="disorder")
    assert kinds(changes) == [OPENED] and "5 disorder events in 1 h" in changes[0].reason


def test_res9_cells_meet_in_their_res8_parent_and_cells_are_apart():
    feed = Feed()
    children = sorted(h3.cell_to_children(HOT, 9))
    for i, child in enumerate(children[:5]):
        feed.observe(TUESDAY + timedelta(minutes=i), cell=child)
    assert kinds(feed.log) == [OPENED] and feed.log[0].cell == HOT
    feed.burst(TUESDAY + timedelta(minutes=6), 4, cell=RIVERWEST)
    feed.burst(TUESDAY + timedelta(minutes=6), 4, cell=DOWNTOWN, category="property")
    assert kinds(feed.log) == [OPENED]  # 4 in another cell, 4 in another category


# --- late and duplicate events --------------------------------------------------------------

def test_late_event_in_the_current_window_counts_and_can_open():
    feed = Feed()
    feed.burst(TUESDAY + timedelta(hours=12), 4)  # 12:00 .. 12:03
    feed.advance(TUESDAY + timedelta(hours=12, minutes=20))
    changes = feed.observe(TUESDAY + timedelta(hours=11, minutes=50))  # late, in 11:30-12:30
    assert feed.tracker.last_outcome == "late_counted"
    assert kinds(changes) == [OPENED] and changes[0].count == 5
    assert changes[0].event_time == "2018-05-01T12:15:00Z"  # the current bucket's start
    assert changes[0].window_start == "2018-05-01T11:30:00Z"


def test_late_event_outside_the_window_counts_for_the_baseline_only():
    feed = Feed()
    feed.observe(TUESDAY)
    feed.advance(TUESDAY + timedelta(days=3))
    feed.observe(TUESDAY + timedelta(days=1, hours=5, minutes=3))
    assert feed.tracker.last_outcome == "late_counted" and feed.log == []
    assert feed.tracker.store[f"hb:{HOT}:violent:2018-05-02T05:00:00Z"]["n"] == 1


def test_event_older_than_the_kept_history_is_dropped_and_reported():
    feed = Feed()
    feed.observe(TUESDAY)
    feed.advance(TUESDAY + timedelta(weeks=5))
    before = dict(feed.tracker.store)
    assert feed.observe(TUESDAY + timedelta(days=1)) == []
    assert feed.tracker.last_outcome == "late_dropped"
    assert feed.tracker.counters["late_dropped"] == 1
    assert dict(feed.tracker.store) == before


def test_a_redelivered_event_is_counted_once():
    feed = Feed()
    event = feed.event(TUESDAY)
    for _ in range(6):
        feed.tracker.observe(dict(event))
    assert feed.tracker.counters == {**feed.tracker.counters, "counted": 1, "duplicate": 5}
    assert feed.burst(TUESDAY + timedelta(minutes=1), 3) == []  # 4 calls: no hotspot


# --- determinism and state ------------------------------------------------------------------

def synthetic_stream(seed: int, days: int) -> list[tuple[str, object]]:
    """('event', dict) and ('advance', datetime) steps: noise, bursts, late and repeated
    events over Milwaukee cells, in event-time order apart from the late ones."""
    rng = random.Random(seed)
    cells = [DOWNTOWN, RIVERWEST, NORTH_SIDE]
    categories = ["violent", "property", "mental_health"]
    steps: list[tuple[str, object]] = []
    n = 0
    t = TUESDAY
    end = TUESDAY + timedelta(days=days)
    while t < end:
        t += timedelta(seconds=rng.randint(60, 2400))
        burst = rng.random() < 0.01
        for _ in range(rng.randint(8, 20) if burst else 1):
            t += timedelta(seconds=rng.randint(5, 200) if burst else 0)
            n += 1
            when = t
            if rng.random() < 0.03:
                when = t - timedelta(seconds=rng.randint(60, 3 * 86400))  # late
            event = {
                "event_id": f"cad:MPD:{n}", "source": "cad", "kind": "created",
                "category": rng.choice(categories), "subject_id": f"cad:MPD:{n}",
                "event_time": iso(when), "cell": rng.choice(cells),
            }
            steps.append(("event", event))
            if rng.random() < 0.02:
                steps.append(("event", dict(event)))  # redelivered
        if rng.random() < 0.3:
            steps.append(("advance", t))
    return steps


def run(steps, store: MutableMapping | None = None, config: HotspotConfig | None = None):
    tracker = HotspotTracker({} if store is None else store, config)
    out: list[HotspotChange] = []
    for what, item in steps:
        out.extend(tracker.observe(item) if what == "event" else tracker.advance(item))
    return out, tracker


class JsonStore(MutableMapping):
    """Keeps values as JSON text, as a Faust table's changelog would: a value changed in
    place after being stored is lost, and tuples come back as lists."""

    def __init__(self):
        self.data: dict[str, str] = {}
        self.sets: Counter[str] = Counter()  # assignments by key kind (hb, hx, hs, ho, hm)
        self.deletes: Counter[str] = Counter()

    def __getitem__(self, key):
        return json.loads(self.data[key])

    def __setitem__(self, key, value):
        self.sets[key.split(":")[0]] += 1
        self.data[key] = json.dumps(value)

    def __delitem__(self, key):
        self.deletes[key.split(":")[0]] += 1
        del self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


def test_same_events_in_the_same_order_give_identical_changes():
    steps = synthetic_stream(seed=11, days=21)
    first, t1 = run(steps)
    second, t2 = run(steps)
    assert first == second
    assert len(first) > 5 and {OPENED, CLOSED} <= set(kinds(first))
    assert json.dumps(t1.store, sort_keys=True) == json.dumps(t2.store, sort_keys=True)
    # The same with a store that serialises every value, like a Faust table.
    third, t3 = run(steps, store=JsonStore())
    assert third == first
    assert {k: json.loads(v) for k, v in t3.store.data.items()} == json.loads(json.dumps(t1.store))
    assert t1.counters["late_counted"] > 0 and t1.counters["duplicate"] > 0


def test_restart_from_the_store_continues_identically():
    steps = synthetic_stream(seed=5, days=14)
    whole, _ = run(steps)
    store = JsonStore()
    head, _ = run(steps[: len(steps) // 2], store=store)
    tail, _ = run(steps[len(steps) // 2:], store=store)  # a new tracker on the same store
    assert head + tail == whole


def test_changes_and_store_are_plain_json():
    steps = synthetic_stream(seed=3, days=10)
    changes, tracker = run(steps)
    for key, value in tracker.store.items():
        assert json.loads(json.dumps(value)) == value, key
    state = changes[0].state()
    assert json.loads(json.dumps(state)) == state
    assert abs(state["latitude"] - 43.06) < 0.1 and abs(state["longitude"] + 87.92) < 0.1
    ring = state["boundary"]["coordinates"][0]
    assert state["boundary"]["type"] == "Polygon" and len(ring) == 7 and ring[0] == ring[-1]
    assert state["cell_resolution"] == 8 and state["status"] == "open"


def test_trackers_with_their_own_namespace_share_a_store():
    store: dict = {}
    a = HotspotTracker(store, namespace="p0:")
    b = HotspotTracker(store, namespace="p1:")
    feed_a, feed_b = Feed(a), Feed(b)
    feed_a.burst(TUESDAY, 5)
    feed_b.burst(TUESDAY + timedelta(days=2), 3, cell=RIVERWEST)
    feed_a.advance(TUESDAY + timedelta(days=1))
    assert kinds(feed_a.log) == [OPENED, CLOSED] and feed_b.log == []
    assert all(k.startswith(("p0:", "p1:")) for k in store)
    assert store["p0:hm"]["bucket"] != store["p1:hm"]["bucket"]


# --- bounded state --------------------------------------------------------------------------

def test_store_stays_bounded_over_eight_weeks():
    config = HotspotConfig()
    store = JsonStore()
    tracker = HotspotTracker(store, config)
    pairs = [(DOWNTOWN, "violent"), (DOWNTOWN, "property"), (RIVERWEST, "violent"),
             (NORTH_SIDE, "welfare")]
    bound = config.kept_buckets * (len(pairs) + 1) + len(pairs) + 2
    rng = random.Random(8)
    sizes = []
    n = 0
    changes = []
    t = TUESDAY
    for step in range(8 * WEEK_S // config.step_s):
        t = TUESDAY + timedelta(seconds=step * config.step_s)
        for cell, category in pairs:  # every pair in every bucket: the densest case
            n += 1
            changes += tracker.observe({"event_id": f"cad:MPD:{n}", "source": "cad",
                                        "kind": "created", "category": category,
                                        "cell": cell, "event_time": iso(t)})
        if step % 96 == 40:  # a daily burst somewhere
            cell, category = pairs[rng.randrange(len(pairs))]
            for i in range(12):
                n += 1
                changes += tracker.observe({"event_id": f"cad:MPD:{n}", "source": "cad",
                                            "kind": "created", "category": category,
                                            "cell": cell,
                                            "event_time": iso(t + timedelta(seconds=i))})
        changes += tracker.advance(t + timedelta(seconds=config.step_s - 1))
        sizes.append(len(store))
        assert len(store) <= bound
    assert OPENED in kinds(changes) and CLOSED in kinds(changes)
    # Steady state once the history is full: exactly kept_buckets buckets per pair.
    hb = [k for k in store if k.startswith("hb:")]
    hx = [k for k in store if k.startswith("hx:")]
    assert len(hb) == len(pairs) * config.kept_buckets
    assert len(hx) == config.kept_buckets
    full = (config.retention_s // config.step_s) + 8
    assert max(sizes[full:]) - min(sizes[full:]) <= len(pairs) + 1  # only hotspots come and go
    oldest = min(k.rsplit(":", 3)[-3][-13:] for k in hb)  # ISO date-hour of the oldest bucket
    horizon = t + timedelta(seconds=config.step_s) - timedelta(seconds=config.retention_s)
    assert oldest >= iso(horizon)[:13]
    # Few writes per event: its bucket; the expiry index only for the first event of a
    # pair in a bucket (here every pair has one event per bucket: the worst case); the
    # meta value once per step; a hotspot's value only when its state changes.
    steps = 8 * WEEK_S // config.step_s
    assert store.sets["hb"] == n
    assert store.sets["hx"] == len(pairs) * steps
    assert store.sets["hm"] == steps
    assert store.sets["hs"] + store.sets["ho"] < n / 50
    # Deletions: each expired bucket value and index value once.
    assert store.deletes["hb"] == len(pairs) * (steps - config.kept_buckets)
    assert store.deletes["hx"] == steps - config.kept_buckets


# --- invariants on arbitrary streams --------------------------------------------------------

stream_steps = st.lists(
    st.tuples(
        st.integers(0, 1800),          # seconds since the previous event
        st.integers(0, 2),             # cell
        st.sampled_from(["violent", "property"]),
        st.integers(0, 12),            # how many calls at once
        st.integers(-3, 0),            # >= 0: on time; < 0: late by that many hours
        st.booleans(),                 # advance afterwards
    ),
    min_size=1, max_size=60,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream_steps)
def test_every_hotspot_follows_its_lifecycle(spec):
    cells = [DOWNTOWN, RIVERWEST, NORTH_SIDE]
    steps = []
    t = TUESDAY
    n = 0
    for gap, cell, category, count, late_h, advance in spec:
        t += timedelta(seconds=gap)
        for _ in range(count):
            n += 1
            when = t + timedelta(hours=late_h) if late_h < 0 else t
            steps.append(("event", {"event_id": f"cad:MPD:{n}", "source": "cad",
                                    "kind": "created", "category": category,
                                    "cell": cells[cell], "event_time": iso(when)}))
        if advance:
            steps.append(("advance", t))
    steps.append(("advance", t + timedelta(hours=6)))
    config = HotspotConfig()
    changes, tracker = run(steps, config=config)
    assert run(steps, config=config)[0] == changes

    by_id: dict[str, list[HotspotChange]] = {}
    open_pair: dict[tuple[str, str], str] = {}
    for c in changes:
        by_id.setdefault(c.hotspot_id, []).append(c)
        pair = (c.cell, c.category)
        if c.kind == OPENED:
            assert pair not in open_pair  # one open hotspot per pair at a time
            open_pair[pair] = c.hotspot_id
            assert c.count >= config.min_count and c.p_value < config.open_p
        elif c.kind == ESCALATED:
            assert c.count >= config.min_count and c.p_value < config.escalate_p
        else:
            assert open_pair.pop(pair) == c.hotspot_id and c.p_value >= config.close_p
    for history in by_id.values():
        assert kinds(history) in ([OPENED], [OPENED, ESCALATED], [OPENED, CLOSED],
                                  [OPENED, ESCALATED, CLOSED])
        assert [c.level for c in history] == sorted(c.level for c in history)
    assert open_pair == {}  # six quiet hours close everything
    assert tracker.open_hotspots() == []


def test_config_is_checked():
    with pytest.raises(ValueError):
        HotspotConfig(window_s=1000, step_s=900)
    with pytest.raises(ValueError):
        HotspotConfig(open_p=0.1, close_p=0.05)
    assert replace(HotspotConfig(), min_count=2).min_count == 2
    assert HotspotConfig().kept_buckets == 4 * 672 + 4


def test_advance_before_any_event_or_to_infinity_changes_nothing():
    feed = Feed()
    assert feed.advance(TUESDAY) == [] and feed.tracker.store == {}
    feed.burst(TUESDAY, 5)
    assert feed.tracker.advance(math.inf) == []
    assert feed.tracker.advance(TUESDAY.replace(tzinfo=None) + timedelta(hours=3)) != []
