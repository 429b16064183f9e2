"""Ordering, selection, determinism, repeats, time shift and the pacing schedule: all pure."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.replay.plan import Pacing, build, parse_time_shift, schedule, time_shift_delta
from streams.replay.player import encode, map_rows


def _messages(plan):
    return [encode(e) for e in plan]


def test_two_replays_produce_identical_messages(real) -> None:
    for name in ("sf_fire_cfs", "toronto_persons_in_crisis"):
        prof, rows, _ = real(name)
        sample = rows[:3000]
        first = _messages(build(prof, map_rows(prof, sample), limit=500))
        second = _messages(build(prof, map_rows(prof, [dict(r) for r in sample]), limit=500))
        assert first == second and len(first) >= 500


def test_limit_and_offset_select_rows_after_ordering(real) -> None:
    prof, rows, mapped = real("milwaukee_pd_cfs")
    whole = build(prof, mapped)
    head = build(prof, mapped, limit=100)
    assert head.rows_selected == 100 and head.rows_read == 33_968
    assert [e.message for e in head] == [e.message for e in whole.base[:100]]
    window = build(prof, mapped, offset_rows=100, limit=50)
    assert [e.message for e in window] == [e.message for e in whole.base[100:150]]
    assert head.base[0].message["event_time"] == "2018-05-01T00:00:14-05:00"  # not file row 1


def test_lifecycle_limit_keeps_whole_rows(real) -> None:
    prof, rows, mapped = real("sf_fire_cfs")
    plan = build(prof, mapped, limit=3)
    assert plan.rows_selected == 3
    # the three earliest unit rows are the three units of call 163660008: 1 created + 4x3
    assert {e.message["incident_number"] for e in plan} == {"16146559"}
    assert len(plan) == 13
    times = [e.at for e in plan]
    assert times == sorted(times)


def test_repeat_shifts_ids_and_times_by_the_span(real) -> None:
    prof, rows, mapped = real("milwaukee_pd_cfs")
    plan = build(prof, mapped, limit=10, repeat=3)
    events = list(plan)
    assert len(plan) == len(events) == 30
    first, again, third = events[0], events[10], events[20]
    assert first.message["event_id"] == "1211376"
    assert again.message["event_id"] == "1211376#1" and third.message["event_id"] == "1211376#2"
    assert again.message["incident_number"] == "1211376#1"
    assert again.key == "MPD:1211376#1"
    span = plan.base[-1].at - plan.base[0].at
    assert plan.period == pytest.approx(span + span / 9)
    assert again.sort_time - first.sort_time == pytest.approx(plan.period)
    assert again.message["event_time"] != first.message["event_time"]
    assert again.message["received_time"] == again.message["event_time"]
    ats = [e.at for e in events]
    assert ats == sorted(ats)  # copies follow one another
    assert len({e.message["event_id"] for e in events}) == 30


def test_repeat_without_shift_ids_sends_identical_copies(real) -> None:
    prof, rows, mapped = real("nyc_311")
    plan = build(prof, mapped, limit=5, repeat=2, shift_ids=False)
    msgs = _messages(plan)
    assert msgs[:5] == msgs[5:]
    ats = [e.at for e in plan]
    assert ats == sorted(ats) and ats[5] > ats[4]  # still paced one after the other


def test_repeat_crosses_dst_exactly(real) -> None:
    # Toronto, 2014-03-08 20:00 EST + 24 h of UTC time = 2014-03-09 21:00 EDT.
    prof, rows, mapped = real("toronto_persons_in_crisis")
    from streams.replay.plan import shifted

    event = next(e for m in mapped for e in m.events
                 if e.message["event_time"].startswith("2014-03-08T20:00"))
    moved = shifted(prof, event, 86_400.0, 0.0, "")
    assert moved.message["event_time"] == "2014-03-09T21:00:00-04:00"


def test_time_shift_now_and_end(real) -> None:
    prof, rows, mapped = real("milwaukee_pd_cfs")
    now = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
    plan = build(prof, mapped, limit=20, time_shift="now", now=now)
    events = list(plan)
    assert events[0].message["event_time"] == "2026-01-15T06:00:00-06:00"  # CST
    assert events[0].times["event_time"] == now
    assert events[0].message["event_id"] == "1211376"  # ids untouched
    gap = events[-1].sort_time - events[0].sort_time
    assert gap == pytest.approx(plan.base[-1].at - plan.base[0].at)
    end = list(build(prof, mapped, limit=20, time_shift="end", now=now))
    assert end[-1].times["event_time"] == now
    fixed = parse_time_shift("2024-06-01T08:00:00-05:00")
    assert list(build(prof, mapped, limit=2, time_shift=fixed))[0].message["event_time"] \
        == "2024-06-01T08:00:00-05:00"


def test_time_shift_arguments() -> None:
    assert parse_time_shift(None) is None and parse_time_shift("now") == "now"
    assert parse_time_shift("2024-01-01T00:00:00").tzinfo == timezone.utc
    with pytest.raises(ValueError, match="now, end or an ISO-8601"):
        parse_time_shift("soon")
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert time_shift_delta("now", 100.0, 200.0, now) == now.timestamp() - 100.0
    assert time_shift_delta("end", 100.0, 200.0, now) == now.timestamp() - 200.0


def test_messages_are_json_objects_with_str_keys(real) -> None:
    prof, rows, mapped = real("sf_fire_cfs")
    key, value = encode(build(prof, mapped, limit=1).base[0])
    assert key == b"SFFD:16146559"
    assert orjson.loads(value)["event_type"] == "created"


# --- pacing --------------------------------------------------------------------------------------


def test_speed_divides_event_time_gaps() -> None:
    times = [1000.0, 1000.0, 1060.0, 1600.0]
    assert schedule(times, Pacing("speed", 60)) == [0.0, 0.0, 1.0, 10.0]
    assert schedule(times, Pacing("speed", 1)) == [0.0, 0.0, 60.0, 600.0]


def test_rate_is_a_token_schedule() -> None:
    assert schedule([5.0, 5.0, 9.0, 1e9], Pacing("rate", 4)) == [0.0, 0.25, 0.5, 0.75]


def test_max_never_waits() -> None:
    assert schedule([1.0, 50.0, 90.0], Pacing("max", 0)) == [0.0, 0.0, 0.0]


def test_pacing_validation() -> None:
    with pytest.raises(ValueError):
        Pacing("speed", 0)
    with pytest.raises(ValueError):
        Pacing("warp", 2)
    assert Pacing().mode == "speed" and Pacing().value == 60.0  # the CLI default


@given(st.lists(st.floats(0, 1e7, allow_nan=False), min_size=1, max_size=50),
       st.sampled_from(["speed", "rate"]), st.floats(0.1, 1000))
def test_schedule_is_monotonic_and_starts_at_zero(raw, mode, value) -> None:
    times = sorted(raw)
    due = schedule(times, Pacing(mode, value))
    assert due[0] == 0.0
    assert all(a <= b for a, b in zip(due, due[1:]))
    if mode == "speed":
        assert due[-1] == pytest.approx((times[-1] - times[0]) / value)
    else:
        assert due[-1] == pytest.approx((len(times) - 1) / value)


def test_real_data_at_speed_60(real) -> None:
    prof, rows, mapped = real("milwaukee_pd_cfs")
    plan = build(prof, mapped)
    due = schedule([e.at for e in plan], Pacing("speed", 60))
    span = plan.base[-1].at - plan.base[0].at
    assert 20 * 86_400 < span < 21 * 86_400
    assert due[-1] == pytest.approx(span / 60)  # 21 days in ~8.4 hours
