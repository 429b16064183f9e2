"""Response-time KPIs, on incident summaries built from real SF Fire rows (calls.csv).

SF Fire times are US/Pacific (PST, UTC-8, on 2016-12-31); the summaries below hold them in
UTC, as the engine does. Each incident's dispatched/on-scene times are its first unit's.
SF priority 3 (emergency) is normalised priority 1, SF priority 2 is priority 3.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, MutableMapping
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.correlate.kpi import META_KEY, KpiAggregator, KpiConfig, KpiRecord


class JsonStore(MutableMapping[str, Any]):
    """Holds values only as JSON text, like a Faust table's changelog: a value that is not
    JSON-serialisable fails, and a change made in place without `store[key] = value` is lost."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self.assignments = 0

    def __getitem__(self, key: str) -> Any:
        return json.loads(self._data[key])

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = json.dumps(value, allow_nan=False)
        self.assignments += 1

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def incident(subject: str, district: str, priority: int, received: str | None,
             dispatched: str | None, on_scene: str | None, closed: str | None = None,
             *, category: str = "medical", mental_health: bool = False,
             crisis_team: bool = False) -> dict[str, Any]:
    return {
        "subject_id": f"cad:SFFD:{subject}", "agency_id": "SFFD", "district": district,
        "priority": priority, "category": category, "mental_health": mental_health,
        "received_time": received, "dispatched_time": dispatched, "on_scene_time": on_scene,
        "closed_time": closed, "crisis_team_responded": crisis_team,
    }


# Battalion B04, SF priority 3, received 2016-12-31 23:00-24:00 PST = window 07:00Z.
# Call 163664036 (units E38, AM30), Medical Incident: 199 s, 312 s, 511 s.
A = incident("16146989", "B04", 1, "2017-01-01T07:52:01Z", "2017-01-01T07:55:20Z",
             "2017-01-01T08:00:32Z", "2017-01-01T09:12:11Z")
# Call 163664020 (E10), Outside Fire: 63 s, 277 s, 340 s.
B = incident("16146988", "B04", 1, "2017-01-01T07:48:17Z", "2017-01-01T07:49:20Z",
             "2017-01-01T07:53:57Z", "2017-01-01T07:54:53Z", category="fire")
# Call 163663962 (E03, EMS6, 52), Medical Incident: 127 s, 119 s, 246 s.
C = incident("16146982", "B04", 1, "2017-01-01T07:36:30Z", "2017-01-01T07:38:37Z",
             "2017-01-01T07:40:36Z", "2017-01-01T08:35:38Z")
# Call 163663915 (E05), Electrical Hazard: 109 s, 246 s, 355 s.
D = incident("16146979", "B04", 1, "2017-01-01T07:24:13Z", "2017-01-01T07:26:02Z",
             "2017-01-01T07:30:08Z", "2017-01-01T07:33:17Z", category="fire")
# Call 163663888 (E38), Outside Fire: 284 s, 275 s, 559 s.
E = incident("16146973", "B04", 1, "2017-01-01T07:18:39Z", "2017-01-01T07:23:23Z",
             "2017-01-01T07:27:58Z", "2017-01-01T07:32:21Z", category="fire")
B04_HOUR = [A, B, C, D, E]

# Call 163664005 (KM01), B03, SF priority 2: dispatched, never on scene (134 s, -, -).
NO_ON_SCENE = incident("16146986", "B03", 3, "2017-01-01T07:46:19Z", "2017-01-01T07:48:33Z",
                       None, "2017-01-01T07:56:43Z")
# Call 163663882 (unit 72), B02: on view, received = dispatched = on scene (0 s, 0 s, 0 s).
ON_VIEW = incident("16146969", "B02", 1, "2017-01-01T07:18:50Z", "2017-01-01T07:18:50Z",
                   "2017-01-01T07:18:50Z", "2017-01-01T08:02:28Z")
# Call 163663994 (E06, AM16), B02: 169 s, 123 s, 292 s.
B02_CALL = incident("16146985", "B02", 1, "2017-01-01T07:41:55Z", "2017-01-01T07:44:44Z",
                    "2017-01-01T07:46:47Z", "2017-01-01T08:38:53Z")
# Call 163661283 (E08, 52), B03, 2016-12-31 11:32:40 AM PST: never on scene (79 s, -, -).
MORNING = incident("16146708", "B03", 1, "2016-12-31T19:32:40Z", "2016-12-31T19:33:59Z",
                   None, "2016-12-31T19:36:18Z")

CSV_ROWS = {  # call number -> the summary built from its first unit's row
    "163664036": A, "163664020": B, "163663962": C, "163663915": D, "163663888": E,
    "163664005": NO_ON_SCENE, "163663882": ON_VIEW, "163663994": B02_CALL, "163661283": MORNING,
}

HOUR_END = utc("2017-01-01T08:00:00Z")
LATENESS = timedelta(seconds=KpiConfig().allowed_lateness_s)
DUE = HOUR_END + LATENESS  # when the 07:00Z windows are first emitted


def fresh(config: KpiConfig | None = None) -> tuple[KpiAggregator, JsonStore]:
    store = JsonStore()
    return KpiAggregator(store, config or KpiConfig()), store


def emit(incidents, watermark=DUE, config=None) -> list[KpiRecord]:
    agg, _ = fresh(config)
    for inc in incidents:
        agg.add(inc)
    return agg.advance(watermark)


def by_id(records: list[KpiRecord]) -> dict[str, KpiRecord]:
    return {r.kpi_id: r for r in records}


def kpi_keys(store) -> list[str]:
    return [k for k in store if k != META_KEY]


# ------------------------------------------------------------------ the test data itself

def test_summaries_are_the_real_rows_in_utc(shared_data):
    pacific = ZoneInfo("America/Los_Angeles")

    def to_utc(text: str) -> str | None:
        if not text:
            return None
        local = datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=pacific)
        return local.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    units: dict[str, list[dict[str, str]]] = {}
    with open(shared_data / "sf_fire_cfs" / "calls.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["Call Number"] in CSV_ROWS:
                units.setdefault(row["Call Number"], []).append(row)
    assert set(units) == set(CSV_ROWS)
    for call, rows in units.items():
        summary = CSV_ROWS[call]
        first = min(rows, key=lambda r: int(r["Unit sequence in call dispatch"]))
        assert summary["subject_id"] == f"cad:SFFD:{first['Incident Number']}"
        assert summary["district"] == first["Battalion"]
        assert summary["received_time"] == to_utc(first["Received DtTm"])
        assert summary["dispatched_time"] == to_utc(first["Dispatch DtTm"])
        assert summary["on_scene_time"] == to_utc(first["On Scene DtTm"])
        assert summary["closed_time"] == max(to_utc(r["Available DtTm"]) for r in rows)
        assert summary["priority"] == {"3": 1, "2": 3}[first["Priority"]]


# ------------------------------------------------------------------ hand-computed figures

def test_one_hour_of_battalion_b04_by_hand():
    [rec] = emit(B04_HOUR)
    assert rec.kpi_id == "kpi:SFFD:B04:1:2017-01-01T07:00:00Z"
    assert (rec.window_start, rec.window_end) == ("2017-01-01T07:00:00Z", "2017-01-01T08:00:00Z")
    assert (rec.agency_id, rec.district, rec.priority, rec.incidents) == ("SFFD", "B04", 1, 5)
    # received -> dispatched: 63 109 127 199 284; mean 782/5; p50 = 3rd of 5; p90 = 5th of 5
    rd = rec.received_to_dispatched
    assert (rd.count, rd.mean_s, rd.p50_s, rd.p90_s, rd.max_s) == (5, 156.4, 127, 284, 284)
    # dispatched -> on scene: 119 246 275 277 312; mean 1229/5
    ds = rec.dispatched_to_on_scene
    assert (ds.count, ds.mean_s, ds.p50_s, ds.p90_s, ds.max_s) == (5, 245.8, 275, 312, 312)
    # received -> on scene: 246 340 355 511 559; mean 2011/5
    ro = rec.received_to_on_scene
    assert (ro.count, ro.mean_s, ro.p50_s, ro.p90_s, ro.max_s) == (5, 402.2, 355, 559, 559)
    for summary in (rd, ds, ro):
        assert (summary.missing, summary.negative, summary.too_long) == (0, 0, 0)
    assert (rec.crisis.numerator, rec.crisis.denominator, rec.crisis.share) == (0, 0, None)
    assert (rec.invalid_times, rec.late_incidents, rec.revision) == (0, 0, 0)


def test_first_record_of_a_window_from_a_single_call():
    [rec] = emit([A])
    assert rec.received_to_dispatched.mean_s == 199  # 07:55:20 - 07:52:01
    assert rec.dispatched_to_on_scene.mean_s == 312  # 08:00:32 - 07:55:20 (E38, not AM30)
    assert rec.received_to_on_scene.mean_s == 511


def test_percentiles_are_nearest_rank_on_an_even_count():
    # B02 07:00Z: the on-view call (0 s) and call 163663994 (169 s, 123 s, 292 s)
    [rec] = emit([B02_CALL, ON_VIEW])
    rd = rec.received_to_dispatched
    assert (rd.count, rd.mean_s, rd.p50_s, rd.p90_s, rd.max_s) == (2, 84.5, 0, 169, 169)
    assert rec.received_to_on_scene.p50_s == 0  # zero is a valid duration: not excluded
    assert rec.received_to_on_scene.negative == 0


def test_nearest_rank_over_ten_values():
    base = datetime(2017, 1, 1, 7, 0, tzinfo=timezone.utc)
    calls = [incident(f"n{i}", "B01", 1, base.isoformat(),
                      (base + timedelta(seconds=10 * i)).isoformat(), None) for i in range(1, 11)]
    [rec] = emit(calls)
    rd = rec.received_to_dispatched
    assert (rd.p50_s, rd.p90_s, rd.max_s, rd.mean_s) == (50, 90, 100, 55)


def test_record_as_dict_is_plain_json():
    [rec] = emit(B04_HOUR)
    d = rec.as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["kpi_id"] == "kpi:SFFD:B04:1:2017-01-01T07:00:00Z"
    assert d["received_to_on_scene"] == {"count": 5, "mean_s": 402.2, "p50_s": 355.0,
                                         "p90_s": 559.0, "max_s": 559.0, "missing": 0,
                                         "negative": 0, "too_long": 0}
    assert d["crisis"] == {"numerator": 0, "denominator": 0, "share": None}
    assert d["revision"] == 0


# ------------------------------------------------------------------ keys and windows

def test_one_record_per_agency_district_priority_and_window_sorted():
    recs = emit([A, NO_ON_SCENE, ON_VIEW, MORNING, B])
    assert [r.kpi_id for r in recs] == [
        "kpi:SFFD:B03:1:2016-12-31T19:00:00Z",
        "kpi:SFFD:B02:1:2017-01-01T07:00:00Z",
        "kpi:SFFD:B03:3:2017-01-01T07:00:00Z",
        "kpi:SFFD:B04:1:2017-01-01T07:00:00Z",
    ]
    assert by_id(recs)["kpi:SFFD:B04:1:2017-01-01T07:00:00Z"].incidents == 2


def test_window_length_is_configurable():
    recs = emit([MORNING, A, B], config=KpiConfig(window_s=86_400, allowed_lateness_s=0),
                watermark=utc("2017-01-02T00:00:00Z"))
    assert [r.kpi_id for r in recs] == ["kpi:SFFD:B03:1:2016-12-31T00:00:00Z",
                                        "kpi:SFFD:B04:1:2017-01-01T00:00:00Z"]
    assert (recs[1].window_start, recs[1].window_end) == ("2017-01-01T00:00:00Z",
                                                          "2017-01-02T00:00:00Z")
    assert recs[1].incidents == 2  # windows are UTC days, not Pacific ones


def test_window_is_keyed_by_received_time_not_close_time():
    # A was received 07:52Z, its first unit on scene 08:00:32Z and it closed 09:12Z
    [rec] = emit([A])
    assert rec.window_start == "2017-01-01T07:00:00Z"


# ------------------------------------------------------------------ missing and bad data

def test_missing_steps_leave_out_only_the_measures_they_need():
    [rec] = emit([NO_ON_SCENE])
    assert rec.kpi_id == "kpi:SFFD:B03:3:2017-01-01T07:00:00Z"
    assert rec.received_to_dispatched.count == 1
    assert rec.received_to_dispatched.mean_s == 134  # 07:48:33 - 07:46:19
    for summary in (rec.dispatched_to_on_scene, rec.received_to_on_scene):
        assert (summary.count, summary.missing, summary.mean_s, summary.p90_s) == (0, 1, None, None)


def test_without_received_time_the_first_known_step_places_the_incident():
    no_received = {**C, "received_time": None}  # absent key or None: both mean missing
    del no_received["closed_time"]
    [rec] = emit([no_received])
    assert rec.window_start == "2017-01-01T07:00:00Z"
    assert rec.dispatched_to_on_scene.mean_s == 119
    assert rec.received_to_dispatched.missing == rec.received_to_on_scene.missing == 1


def test_incidents_without_agency_or_any_time_are_counted_not_windowed():
    agg, store = fresh()
    assert agg.add({**A, "agency_id": None}) == "unplaceable"
    assert agg.add({**A, "received_time": None, "dispatched_time": None,
                    "on_scene_time": None, "closed_time": None}) == "unplaceable"
    assert agg.counters()["unplaceable"] == 2
    assert kpi_keys(store) == []


def test_negative_durations_are_excluded_and_counted():
    # C with its on-scene time keyed 07:30:36 instead of 07:40:36: before received (07:36:30)
    early = {**C, "on_scene_time": "2017-01-01T07:30:36Z"}
    [rec] = emit([A, B, early])
    assert rec.incidents == 3
    ro, ds, rd = rec.received_to_on_scene, rec.dispatched_to_on_scene, rec.received_to_dispatched
    assert (ro.count, ro.negative, ro.mean_s, ro.max_s) == (2, 1, 425.5, 511)  # (511 + 340) / 2
    assert (ds.count, ds.negative, ds.mean_s) == (2, 1, 294.5)  # (312 + 277) / 2
    assert (rd.count, rd.negative, rd.mean_s) == (3, 0, 129.667)  # C's 127 s still counts


def test_absurd_durations_are_excluded_and_counted():
    # B's on-scene time a day and an hour late: 25 h > 24 h
    stuck = {**B, "on_scene_time": "2017-01-02T08:53:57Z"}
    [rec] = emit([A, stuck])
    ro, ds = rec.received_to_on_scene, rec.dispatched_to_on_scene
    assert (ro.count, ro.too_long, ro.mean_s, ro.p90_s) == (1, 1, 511, 511)
    assert (ds.count, ds.too_long, ds.mean_s) == (1, 1, 312)
    assert rec.received_to_dispatched.count == 2


def test_the_24_h_limit_is_inclusive_and_configurable():
    day = {**B, "on_scene_time": "2017-01-02T07:48:17Z"}  # received + exactly 86 400 s
    [rec] = emit([day])
    assert (rec.received_to_on_scene.count, rec.received_to_on_scene.too_long) == (1, 0)
    [rec] = emit([A], config=KpiConfig(max_duration_s=300))
    assert rec.received_to_on_scene.too_long == 1  # 511 s > 300 s
    assert rec.dispatched_to_on_scene.too_long == 1  # 312 s > 300 s
    assert rec.received_to_dispatched.count == 1


def test_unreadable_times_count_as_missing():
    [rec] = emit([{**A, "on_scene_time": "soon"}])
    assert rec.invalid_times == 1
    assert rec.received_to_on_scene.missing == 1
    assert rec.received_to_dispatched.count == 1


# ------------------------------------------------------------------ crisis share

def test_crisis_share_of_mental_health_calls():
    # SF Fire has no mental-health call types: the flags are set for the test
    calls = [
        {**A, "mental_health": True, "crisis_team_responded": True},
        {**B, "mental_health": True, "crisis_team_responded": False},
        {**C, "mental_health": True, "crisis_team_responded": True},
        {**D, "mental_health": False, "crisis_team_responded": True},  # not in the share
        {**E, "mental_health": False},
    ]
    [rec] = emit(calls)
    assert (rec.crisis.numerator, rec.crisis.denominator) == (2, 3)
    assert rec.crisis.share == pytest.approx(2 / 3)
    assert rec.incidents == 5


def test_crisis_fields_missing_mean_false():
    bare = {k: v for k, v in A.items() if k not in ("mental_health", "crisis_team_responded")}
    [rec] = emit([bare, {**B, "mental_health": True}])
    assert (rec.crisis.numerator, rec.crisis.denominator, rec.crisis.share) == (0, 1, 0.0)


# ------------------------------------------------------------------ emission and state

def test_window_is_emitted_once_when_the_watermark_passes_end_plus_lateness():
    agg, store = fresh()
    for inc in B04_HOUR:
        agg.add(inc)
    assert agg.advance(HOUR_END) == []
    assert agg.advance(DUE - timedelta(seconds=1)) == []
    [rec] = agg.advance(DUE)
    assert rec.revision == 0
    assert agg.advance(DUE) == []
    assert agg.advance(DUE + timedelta(hours=5)) == []
    assert agg.counters()["open_windows"] == 1  # kept for revisions, revise_for_s
    assert agg.advance(DUE + timedelta(seconds=KpiConfig().revise_for_s)) == []
    assert kpi_keys(store) == []
    assert agg.counters()["open_windows"] == 0


def test_without_revisions_a_window_is_emitted_and_deleted_at_once():
    agg, store = fresh(KpiConfig(revise_for_s=0, allowed_lateness_s=600))
    for inc in B04_HOUR + [MORNING]:
        agg.add(inc)
    recs = agg.advance(HOUR_END + timedelta(minutes=10))
    assert [r.window_start for r in recs] == ["2016-12-31T19:00:00Z", "2017-01-01T07:00:00Z"]
    assert kpi_keys(store) == []
    assert agg.advance(HOUR_END + timedelta(hours=1)) == []


def test_open_windows_wait_for_their_own_deadline():
    agg, store = fresh()
    agg.add(MORNING)  # 19:00Z window, due 23:00Z
    agg.add(A)  # 07:00Z window, due 11:00Z
    [rec] = agg.advance(utc("2016-12-31T23:00:00Z"))
    assert rec.window_start == "2016-12-31T19:00:00Z"
    assert agg.advance(utc("2017-01-01T10:59:59Z")) == []
    [rec] = agg.advance(utc("2017-01-01T11:00:00Z"))
    assert rec.window_start == "2017-01-01T07:00:00Z"


def test_the_watermark_never_moves_back():
    agg, _ = fresh()
    agg.add(A)
    [rec] = agg.advance(DUE)
    assert agg.advance(HOUR_END) == []
    assert agg.watermark == DUE
    assert agg.add(B) == "late"  # still judged against DUE


def test_state_is_json_and_assigned():
    agg, store = fresh()
    for inc in B04_HOUR:
        agg.add(inc)
    # JsonStore keeps only what was assigned: had `add` changed a value in place the record
    # would miss incidents.
    [rec] = agg.advance(DUE)
    assert rec.incidents == 5
    [key] = kpi_keys(store)
    assert key == rec.kpi_id


# ------------------------------------------------------------------ late incidents

def test_late_incident_revises_the_window():
    agg, _ = fresh()
    for inc in [B, C, D, E]:
        assert agg.add(inc) == "added"
    [first] = agg.advance(DUE)
    assert (first.incidents, first.received_to_on_scene.p90_s, first.revision) == (4, 559, 0)
    assert agg.add(A) == "late"  # closed after its window was emitted
    [revised] = agg.advance(DUE + timedelta(minutes=1))
    assert revised.kpi_id == first.kpi_id
    assert (revised.revision, revised.incidents, revised.late_incidents) == (1, 5, 1)
    assert revised.received_to_on_scene.mean_s == 402.2  # as if A had been on time
    assert agg.counters()["late_incidents"] == 1
    assert agg.counters()["late_dropped"] == 0
    assert agg.advance(DUE + timedelta(minutes=2)) == []  # nothing new: no revision


def test_replayed_late_incident_does_not_revise():
    agg, _ = fresh()
    for inc in B04_HOUR:
        agg.add(inc)
    [_] = agg.advance(DUE)
    assert agg.add(A) == "unchanged"  # at-least-once replay of an incident already counted
    assert agg.advance(DUE + timedelta(minutes=1)) == []
    assert agg.counters()["late_incidents"] == 0


def test_late_incident_for_a_key_without_a_record_gets_revision_0():
    agg, _ = fresh()
    agg.add(A)
    [_] = agg.advance(DUE)
    assert agg.add(NO_ON_SCENE) == "late"  # B03 priority 3: no window of that key yet
    [rec] = agg.advance(DUE)
    assert (rec.kpi_id, rec.revision, rec.late_incidents) == (
        "kpi:SFFD:B03:3:2017-01-01T07:00:00Z", 0, 1)


def test_too_late_to_revise_is_dropped_and_counted():
    agg, store = fresh(KpiConfig(revise_for_s=0))
    for inc in [B, C, D, E]:
        agg.add(inc)
    [_] = agg.advance(DUE)
    assert agg.add(A) == "late_dropped"
    assert agg.advance(DUE + timedelta(hours=1)) == []
    assert kpi_keys(store) == []
    counters = agg.counters()
    assert (counters["late_incidents"], counters["late_dropped"]) == (1, 1)


def test_after_the_revision_period_late_incidents_are_dropped():
    agg, store = fresh()
    for inc in [B, C]:
        agg.add(inc)
    agg.advance(DUE)
    agg.advance(DUE + timedelta(seconds=KpiConfig().revise_for_s))
    assert agg.add(A) == "late_dropped"
    assert kpi_keys(store) == []


def test_a_second_summary_of_an_incident_replaces_the_first():
    agg, _ = fresh()
    agg.add({**A, "on_scene_time": None})  # expired before the on-scene time was known
    assert agg.add(A) == "replaced"  # re-opened and closed again, with it
    [rec] = agg.advance(DUE)
    ro = rec.received_to_on_scene
    assert (rec.incidents, ro.count, ro.mean_s) == (1, 1, 511)
    assert agg.counters()["replaced"] == 1


# ------------------------------------------------------------------ config

@pytest.mark.parametrize("kwargs", [{"window_s": 0}, {"max_duration_s": -1},
                                    {"allowed_lateness_s": -1}, {"revise_for_s": -5}])
def test_config_is_checked(kwargs):
    with pytest.raises(ValueError):
        KpiConfig(**kwargs)


def test_watermark_must_be_a_time():
    agg, _ = fresh()
    with pytest.raises(ValueError):
        agg.advance("tomorrow")  # type: ignore[arg-type]


# ------------------------------------------------------------------ determinism

ALL_REAL = [A, B, C, D, E, NO_ON_SCENE, ON_VIEW, B02_CALL, MORNING]


def test_same_incidents_same_order_same_records():
    first = [r.as_dict() for r in emit(ALL_REAL)]
    second = [r.as_dict() for r in emit([dict(i) for i in ALL_REAL])]
    assert json.dumps(first) == json.dumps(second)
    assert len(first) == 4


def test_reversed_order_same_records():
    assert [r.as_dict() for r in emit(ALL_REAL)] == [r.as_dict() for r in emit(ALL_REAL[::-1])]


WINDOW = datetime(2017, 1, 1, 7, 0, tzinfo=timezone.utc)
offsets = st.one_of(st.none(), st.integers(min_value=-3_600, max_value=90_000))


@st.composite
def incident_lists(draw) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=25))
    out = []
    for i in range(count):
        received = WINDOW + timedelta(seconds=draw(st.integers(0, 3_599)),
                                      milliseconds=draw(st.sampled_from([0, 0, 1, 250, 999])))
        dispatch, scene = draw(offsets), draw(offsets)
        out.append(incident(
            f"h{i}", draw(st.sampled_from(["B02", "B04"])), draw(st.sampled_from([1, 3])),
            received.isoformat(),
            None if dispatch is None else (received + timedelta(seconds=dispatch)).isoformat(),
            None if scene is None else (received + timedelta(seconds=scene)).isoformat(),
            mental_health=draw(st.booleans()), crisis_team=draw(st.booleans()),
        ))
    return out


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_order_of_add_within_a_window_does_not_change_the_records(data):
    calls = data.draw(incident_lists())
    shuffled = data.draw(st.permutations(calls))
    assert [r.as_dict() for r in emit(shuffled)] == [r.as_dict() for r in emit(calls)]


class EveryWindowScanned(KpiAggregator):
    """The aggregator before its due-time index: `advance` reads every open window. The
    reference the indexed one must match, record for record and state for state."""

    def advance(self, watermark: datetime) -> list[KpiRecord]:
        cfg, meta = self.config, self._meta()
        given_ms = int((watermark - datetime(1970, 1, 1, tzinfo=timezone.utc))
                       / timedelta(milliseconds=1))
        wm = given_ms if meta["watermark"] is None else max(meta["watermark"], given_ms)
        if wm != meta["watermark"]:
            self.store[META_KEY] = {**meta, "watermark": wm}
        lateness, keep = cfg.allowed_lateness_s * 1000, cfg.revise_for_s * 1000
        records = []
        for key in [k for k in list(self.store) if k.startswith("kpi:")]:
            state = self.store[key]
            due = state["end"] + lateness
            if wm < due:
                continue
            expired = wm >= due + keep
            if state["dirty"]:
                records.append(self._record(key, state, state["revision"] + 1))
                if not expired:
                    self.store[key] = {**state, "revision": state["revision"] + 1,
                                       "dirty": False}
            if expired:
                del self.store[key]
        records.sort(key=lambda r: (r.window_start, r.kpi_id))
        return records


@st.composite
def kpi_timelines(draw) -> list[tuple[str, Any]]:
    """Incidents over six hours, late ones included, with watermarks moving among them and
    restarts (a new aggregator on the same store, as after a rebalance)."""
    steps: list[tuple[str, Any]] = []
    for i in range(draw(st.integers(min_value=1, max_value=40))):
        kind = draw(st.sampled_from(["add", "add", "add", "advance", "restart"]))
        at = WINDOW + timedelta(seconds=draw(st.integers(0, 6 * 3_600)))
        if kind == "add":
            steps.append(("add", incident(
                f"t{draw(st.integers(0, 12))}", draw(st.sampled_from(["B02", "B04"])), 1,
                at.isoformat(), (at + timedelta(seconds=draw(st.integers(0, 900)))).isoformat(),
                None)))
        else:
            steps.append((kind, at))
    return steps


@settings(max_examples=200, deadline=None)
@given(steps=kpi_timelines(), revise=st.sampled_from([0, 1_800, 7_200]))
def test_the_due_index_emits_what_scanning_every_window_emits(steps, revise):
    config = KpiConfig(revise_for_s=revise, allowed_lateness_s=600)
    indexed_store, scanned_store = JsonStore(), JsonStore()
    indexed = KpiAggregator(indexed_store, config)
    scanned = EveryWindowScanned(scanned_store, config)
    for kind, arg in steps + [("advance", WINDOW + timedelta(days=2))]:
        if kind == "add":
            assert indexed.add(dict(arg)) == scanned.add(dict(arg))
        elif kind == "advance":
            assert [r.as_dict() for r in indexed.advance(arg)] == \
                [r.as_dict() for r in scanned.advance(arg)]
        else:
            indexed = KpiAggregator(indexed_store, config)
        assert dict(indexed_store.items()) == dict(scanned_store.items())
