"""Watermarks and the reorder buffer; and the property that makes replays repeatable:
duplicates and reordering within the allowed lateness change nothing."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from agents.correlate.engine import Correlator
from agents.correlate.ordering import (ReorderBuffer, Watermarks, event_ts, origin_of,
                                       progress, resume)
from agents.ingest.progress import SourceProgress
from tests.unit.correlate.factories import HERE, event, moved


def test_watermark_is_the_slowest_holding_origin_minus_lateness():
    wm = Watermarks(lateness_s=10, idle_s=5, expected=["cad:0", "cad:1"])
    wm.observe_mark("cad:0", 1000, last_event_wall=100.0, wall=100.0)
    assert wm.current() == -math.inf  # cad:1 expected, not heard of yet
    wm.observe_mark("cad:1", 900, last_event_wall=100.0, wall=100.5)
    assert wm.current() == 890
    wm.observe_event("cad:1", 950)
    assert wm.current() == 940


def test_an_idle_origin_stops_holding_on_the_streams_clock():
    wm = Watermarks(lateness_s=10, idle_s=5, expected=["cad:0", "cad:1"])
    wm.observe_mark("cad:0", 1000, last_event_wall=100.0, wall=100.0)
    wm.observe_mark("cad:1", 500, last_event_wall=100.0, wall=100.0)
    assert wm.current() == 490
    # cad:0 keeps producing; cad:1 has been silent for 6 s of ingest wall time
    wm.observe_mark("cad:0", 1100, last_event_wall=106.0, wall=106.0)
    assert wm.current() == 490  # nothing has said so yet
    wm.observe_mark("cad:1", 500, last_event_wall=100.0, wall=106.0)
    assert wm.current() == 1090
    # nothing produces any more: everything held may go
    wm.observe_mark("cad:0", 1100, last_event_wall=106.0, wall=120.0)
    wm.observe_mark("cad:1", 500, last_event_wall=100.0, wall=120.0)
    assert wm.current() == math.inf


def test_silence_is_known_only_while_the_origins_owner_reports():
    wm = Watermarks(lateness_s=10, idle_s=5, expected=["cad:0", "cad:1"])
    wm.observe_mark("cad:0", 1000, last_event_wall=100.0, wall=100.0)  # busy throughout
    wm.observe_mark("cad:1", 500, last_event_wall=100.0, wall=106.0)  # quiet for 6 s
    assert wm.current() == 990
    # cad:1's owner is killed: its marks stop, cad:0's go on
    wm.observe_mark("cad:0", 1000, last_event_wall=110.0, wall=110.0)
    assert wm.current() == 990  # as of its last mark, 4 s ago, it was quiet
    wm.observe_mark("cad:0", 1000, last_event_wall=111.0, wall=111.0)
    assert wm.current() == 490  # 5 s without news: records may wait for its next owner
    # its next owner reports it caught up, still quiet
    wm.observe_mark("cad:1", 500, last_event_wall=100.0, wall=112.0)
    assert wm.current() == 990


def test_a_released_origin_holds_and_older_marks_do_not_make_it_idle_again():
    wm = Watermarks(lateness_s=10, idle_s=5, expected=["cad:0", "cad:1"])
    wm.observe_mark("cad:0", 1000, last_event_wall=106.0, wall=106.0)  # busy throughout
    wm.observe_mark("cad:1", 500, last_event_wall=100.0, wall=106.0)  # quiet for 6 s
    assert wm.current() == 990
    # cad:1's worker stops reading it (agents/ingest/progress.py, `released`)
    wm.observe_mark("cad:1", None, None, wall=106.5, caught_up=False)
    assert wm.current() == 490
    # a mark that worker took before, read after: its facts count, its idleness does not
    wm.observe_mark("cad:1", 520, last_event_wall=100.0, wall=106.2, read_wall=106.1)
    assert wm.current() == 510
    assert wm.origins["cad:1"].read_wall == 106.1
    # the next owner has read it to its end, and it has been quiet since
    wm.observe_mark("cad:0", 1000, last_event_wall=108.0, wall=108.0)
    wm.observe_mark("cad:1", 520, last_event_wall=100.0, wall=108.0)
    assert wm.current() == 990


def test_a_stale_view_of_a_partitions_end_is_no_evidence_of_silence():
    # Ingest's loop was busy for 8 s: its mark is new, but the fetch that showed cad:1's end
    # was made before its last event was handled. More may have arrived since.
    wm = Watermarks(lateness_s=10, idle_s=5, expected=["cad:0", "cad:1"])
    wm.observe_mark("cad:0", 1000, last_event_wall=107.0, wall=108.0, as_of=107.9)
    wm.observe_mark("cad:1", 500, last_event_wall=100.0, wall=108.0, as_of=99.5)
    assert wm.current() == 490
    # the next fetch, 6 s after its last event, still shows the end: now it is quiet
    wm.observe_mark("cad:1", 500, last_event_wall=100.0, wall=108.5, as_of=106.0)
    assert wm.current() == 990
    # a live feed vouches for event time only up to when its end was seen
    live = Watermarks(lateness_s=0, idle_s=60, expected=["cad:0"])
    live.observe_mark("cad:0", 1000.0, last_event_wall=1000.0, wall=1030.0, as_of=1002.0)
    assert live.current() == 1002.0


def test_expected_origins_never_heard_of_stop_holding_after_idle_s():
    wm = Watermarks(lateness_s=0, idle_s=5, expected=["crisis:0"])
    wm.observe_mark("cad:0", 1000, last_event_wall=10.0, wall=10.0)
    assert wm.current() == -math.inf
    wm.observe_mark("cad:0", 1000, last_event_wall=16.0, wall=16.0)
    assert wm.current() == 1000


def test_buffer_releases_in_event_time_then_id_order_and_keeps_a_store():
    store: dict = {}
    buf = ReorderBuffer(store)
    for minutes, eid in [(3, "c"), (1, "b"), (1, "a"), (2, "d")]:
        e = event(minutes=minutes, event_id=eid)
        assert buf.push(e, event_ts(e))
    assert len(store) == 4
    released = buf.release(event_ts(event(minutes=2)))
    assert [e["event_id"] for e in released] == ["a", "b", "d"]
    assert set(store) == {"c"}
    late = event(minutes=0, event_id="z")
    assert not buf.push(late, event_ts(late))  # behind what was released: caller applies it


def test_restore_from_the_store():
    store: dict = {}
    buf = ReorderBuffer(store)
    e = event(minutes=1)
    buf.push(e, event_ts(e))
    again = ReorderBuffer(store)
    again.restore(store.values())
    assert [x["event_id"] for x in again.release(math.inf)] == [e["event_id"]]


def test_a_partitions_next_owner_carries_on_from_its_progress():
    """After a rebalance, the origin whose ingest is moving to another worker says nothing
    for a while. Started blind, the next owner's watermark took it for an origin never
    heard of and stopped waiting after idle_s; resumed, it waits, as the last owner did."""
    def watermarks() -> Watermarks:
        return Watermarks(lateness_s=0, idle_s=5, expected=["cad:0", "cad:1", "crisis:0"])

    wm, buf = watermarks(), ReorderBuffer()
    wm.observe_mark("cad:0", 1000, last_event_wall=100.0, wall=100.0, caught_up=False)
    wm.observe_mark("cad:1", 5000, last_event_wall=100.0, wall=100.0, caught_up=False)
    for wall in (90.0, 100.0):  # no crisis feed: quiet from the start
        wm.observe_mark("crisis:0", None, last_event_wall=None, wall=wall)
    e = {"event_id": "a", "event_time": "2018-05-01T05:00:00Z"}
    buf.push(e, 900.0)
    assert buf.release(wm.current()) == [e]
    # written at the checkpoint, read back by the next owner (JSON has no -inf)
    record = orjson.loads(orjson.dumps(progress(wm, buf)))

    resumed, blind = (watermarks(), ReorderBuffer()), (watermarks(), ReorderBuffer())
    resume(record, *resumed)
    for w, _ in (resumed, blind):  # cad:0's ingest is moving; the others stay here
        for wall in (104.0, 110.0):
            w.observe_mark("cad:1", 6000, last_event_wall=wall, wall=wall, caught_up=False)
            w.observe_mark("crisis:0", None, last_event_wall=None, wall=wall)
    assert resumed[0].current() == 1000  # cad:0 holds until its new owner speaks
    assert blind[0].current() == 6000  # what the blind start did: cad:0 "idle"
    assert not resumed[1].push(e, 800.0)  # behind what was released: late, as before
    resumed[0].observe_mark("cad:0", 1200, last_event_wall=111.0, wall=111.0,
                            caught_up=False)
    assert resumed[0].current() == 1200


def test_progress_written_by_another_version_still_resumes():
    """A rolling upgrade moves partitions between versions whose origin fields differ: a
    field this version does not know is ignored, one the record lacks keeps its default."""
    wm, buf = Watermarks(lateness_s=0, idle_s=5, expected=["cad:0"]), ReorderBuffer()
    wm.observe_mark("cad:0", 1000, last_event_wall=100.0, wall=100.0, caught_up=False)
    record = orjson.loads(orjson.dumps(progress(wm, buf)))
    record["origins"]["cad:0"]["from_a_later_version"] = 7
    del record["origins"]["cad:0"]["caught_up_wall"]
    del record["started_wall"]

    resumed = Watermarks(lateness_s=0, idle_s=5, expected=["cad:0"])
    resume(record, resumed, ReorderBuffer())
    assert resumed.origins["cad:0"].max_ts == 1000
    assert resumed.origins["cad:0"].caught_up_wall is None
    assert resumed.current() == 1000


# ---------------------------------------------------------------- the property

LATENESS_S = 300.0


@st.composite
def histories(draw):
    """Several incidents near each other, each with a lifecycle, plus reports."""
    events = []
    n = draw(st.integers(1, 6))
    for i in range(n):
        start = draw(st.integers(0, 40))
        point = moved(HERE, north_m=draw(st.integers(0, 200)), east_m=draw(st.integers(0, 200)))
        category = draw(st.sampled_from(["violent", "disorder", "medical", "mental_health"]))
        steps = draw(st.lists(st.sampled_from(["dispatched", "en_route", "on_scene", "cleared",
                                               "closed", "updated"]), max_size=4))
        events.append(event(subject=str(i), minutes=start, point=point, category=category))
        t = start
        for j, kind in enumerate(steps):
            t += draw(st.integers(0, 6))
            events.append(event(subject=str(i), kind=kind, minutes=t, point=point,
                                category=category, units=[f"U{i}"], event_id=f"{i}:{j}:{kind}"))
    for k in range(draw(st.integers(0, 3))):
        events.append(event("community", subject=f"r{k}", minutes=draw(st.integers(0, 50)),
                            point=moved(HERE, east_m=draw(st.integers(0, 300))),
                            category="disorder"))
    return sorted(events, key=lambda e: (event_ts(e), e["event_id"]))


def _disorder(events, draw):
    """Arrival order: each event may come up to LATENESS_S late, some twice."""
    delays = [draw(st.floats(0, LATENESS_S * 0.99)) for _ in events]
    arrivals = [(event_ts(e) + d, i, e) for i, (e, d) in enumerate(zip(events, delays))]
    dups = draw(st.lists(st.integers(0, len(events) - 1), max_size=3)) if events else []
    for i in dups:
        arrivals.append((event_ts(events[i]) + LATENESS_S * 0.5, len(arrivals), dict(events[i])))
    return [e for _, _, e in sorted(arrivals, key=lambda a: (a[0], a[1]))]


def _run(arrival: list[dict]):
    corr = Correlator({}, {})
    wm = Watermarks(lateness_s=LATENESS_S, idle_s=5)
    buf = ReorderBuffer()
    updates = []

    def apply(released):
        for e in released:
            updates.extend(corr.apply(e).updates)
        updates.extend(corr.advance(buf.released_ts).updates)

    for e in arrival:
        ts = event_ts(e)
        wm.observe_event(origin_of(e), ts)
        if not buf.push(e, ts):
            apply([e])
        apply(buf.release(wm.current()))
    apply(buf.release(math.inf))
    finals = {u["subject_id"]: u["state"] for u in updates}
    return {u["update_id"] for u in updates}, finals


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_duplicates_and_reordering_within_lateness_change_nothing(data):
    clean = data.draw(histories())
    messy = _disorder(clean, data.draw)
    clean_ids, clean_states = _run(clean)
    messy_ids, messy_states = _run(messy)
    assert messy_ids == clean_ids
    assert messy_states == clean_states


def test_an_origin_with_a_backlog_is_never_idle():
    wm = Watermarks(lateness_s=0, idle_s=5)
    wm.observe_mark("cad:0", 1000, last_event_wall=100.0, wall=100.0, caught_up=True)
    wm.observe_mark("cad:1", 500, last_event_wall=100.0, wall=100.0, caught_up=False)
    # cad:1 has been silent for 20 s, but only because ingest has not got to its backlog
    wm.observe_mark("cad:0", 1200, last_event_wall=120.0, wall=120.0, caught_up=True)
    assert wm.current() == 500
    wm.observe_mark("cad:1", 500, last_event_wall=100.0, wall=121.0, caught_up=True)
    assert wm.current() == 1200


def test_progress_marks_say_whether_ingest_caught_up():
    from agents.ingest.progress import SourceProgress

    progress = SourceProgress(started_wall=0.0)
    progress.observe("cad:0", 1000.0, 1.0, offset=41)
    message = progress.marks({"cad:0": 50, "cad:1": 0, "cad:2": None}, 2.0)
    marks = {m["origin"]: m for m in message["origins"]}
    assert marks["cad:0"]["caught_up"] is False  # offsets 42..49 still to read
    assert marks["cad:1"]["caught_up"] is True  # an empty partition
    assert marks["cad:2"]["caught_up"] is True and marks["cad:2"]["max_ts"] is None
    assert progress.marks({"cad:0": 42}, 3.0)["origins"][0]["caught_up"] is True


def test_an_event_after_a_quiet_spell_waits_for_its_origins_next_mark():
    wm = Watermarks(lateness_s=10, idle_s=5)
    wm.observe_mark("cad:0", 1000, last_event_wall=100.0, wall=100.0, caught_up=True)
    wm.observe_mark("cad:0", 1000, last_event_wall=100.0, wall=110.0, caught_up=True)
    assert wm.current() == math.inf  # quiet: nothing held
    wm.observe_event("cad:0", 2000)
    assert wm.current() == 1990  # the new event holds time until the origin reports again
    wm.observe_mark("cad:0", 2000, last_event_wall=111.0, wall=111.0, caught_up=True)
    assert wm.current() == 1990


def test_a_quiet_live_feed_does_not_hold_back_a_busy_one():
    now = 1_800_000_000.0
    wm = Watermarks(lateness_s=2, idle_s=5, live_window_s=300)
    # the busy CAD partition is at `now`; the crisis feed last spoke 30 s ago but is live
    # and caught up: its ingest vouches for event time up to its clock
    wm.observe_mark("cad:0", now, last_event_wall=now, wall=now, caught_up=True)
    wm.observe_mark("crisis:0", now - 30, last_event_wall=now - 3, wall=now, caught_up=True)
    assert wm.current() == now - 2
    # a replay of 2018 data is not live: it holds by its event times alone
    old = 1_525_150_000.0
    wm.observe_mark("community:0", old, last_event_wall=now - 1, wall=now, caught_up=True)
    assert wm.current() == old - 2


def test_a_partition_read_to_its_end_before_a_restart_is_caught_up_after_it():
    # A restarted worker (or one a partition returns to after a rebalance) resumes at the
    # group's committed offset, and may have nothing left to read there.
    fresh = SourceProgress(started_wall=0.0)
    assert fresh.caught_up("cad:0", highwater=120, committed=120) is True
    assert fresh.caught_up("cad:0", highwater=130, committed=120) is False  # 10 to read
    # offsets this worker handled before another one owned the partition are stale
    returned = SourceProgress(started_wall=0.0)
    returned.observe("cad:0", 10.0, wall=1.0, offset=40)
    assert returned.caught_up("cad:0", highwater=120, committed=120) is True
    assert returned.caught_up("cad:0", highwater=120, committed=None) is False
    marks = returned.marks({"cad:0": 120}, 5.0, committed={"cad:0": 120})
    assert marks["origins"][0]["caught_up"] is True


def test_a_busy_partition_is_read_past_its_earlier_fetches():
    """While records keep coming the latest fetch is ahead of what ingest has handled, so
    the partition is not caught up; it has been read past each earlier fetch whose
    highwater it has handled, and its marks say the latest such fetch's time."""
    progress = SourceProgress(started_wall=0.0)
    progress.observe("cad:0", 100.0, wall=1.0, offset=9)  # offsets 0..9 handled
    assert progress.read_past("cad:0", highwater=10, polled=1.00) == 1.00
    progress.observe("cad:0", 101.0, wall=1.1, offset=14)
    assert progress.read_past("cad:0", highwater=20, polled=1.05) == 1.00  # 15..19 to read
    assert progress.read_past("cad:0", highwater=30, polled=1.10) == 1.00
    progress.observe("cad:0", 102.0, wall=1.2, offset=24)
    marks = progress.marks({"cad:0": 40}, 1.3, polled={"cad:0": 1.25})
    (mark,) = marks["origins"]
    assert mark["caught_up"] is False and mark["read_wall"] == 1.05  # past 20, not 30
    progress.observe("cad:0", 103.0, wall=1.4, offset=39)
    (mark,) = progress.marks({"cad:0": 40}, 1.5, polled={"cad:0": 1.25})["origins"]
    assert mark["caught_up"] is True and mark["read_wall"] == 1.25
    # nothing fetched yet, or nothing read past: no claim
    assert SourceProgress(started_wall=0.0).read_past("cad:1", None, None) is None
    behind = SourceProgress(started_wall=0.0)
    assert behind.read_past("cad:1", highwater=50, polled=2.0) is None


def test_a_busy_live_feed_vouches_up_to_the_fetch_it_was_read_past():
    now = 1_800_000_000.0
    wm = Watermarks(lateness_s=0.05, idle_s=5, live_window_s=300)
    # the busy feed's events are to the second, and it is never caught up at a mark
    wm.observe_mark("cad:0", now - 1, last_event_wall=now, wall=now, caught_up=False,
                    read_wall=now - 0.02)
    assert wm.current() == pytest.approx(now - 0.07, abs=1e-6)  # not now - 1.05
    wm.observe_event("cad:0", now - 1)  # an event (of that second) does not undo what was read
    assert wm.current() == pytest.approx(now - 0.07, abs=1e-6)
    # an older read_wall never moves progress back
    wm.observe_mark("cad:0", now - 1, last_event_wall=now, wall=now + 0.1, caught_up=False,
                    read_wall=now - 0.5)
    assert wm.current() == pytest.approx(now - 0.07, abs=1e-6)
    # a replay of old data is not live: read_wall says nothing about its event times
    old = 1_525_150_000.0
    replay = Watermarks(lateness_s=5, idle_s=5, live_window_s=300)
    replay.observe_mark("cad:0", old, last_event_wall=now, wall=now, caught_up=False,
                        read_wall=now - 0.02)
    assert replay.current() == old - 5


def test_read_past_does_not_make_a_busy_partition_idle():
    """Being read past an earlier fetch is not silence: a partition with records still to
    read holds the watermark whatever its read_wall says."""
    wm = Watermarks(lateness_s=5, idle_s=1)
    wm.observe_mark("cad:0", 1000, last_event_wall=100.0, wall=100.0, caught_up=True)
    wm.observe_mark("cad:1", 500, last_event_wall=50.0, wall=200.0, caught_up=False,
                    read_wall=199.0)
    assert wm.current() == 495
