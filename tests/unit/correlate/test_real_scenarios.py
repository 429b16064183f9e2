"""Correlation on real rows of ../shared/data, checked by hand against the CSVs.

The shared data sets are from four different cities, so no community report or crisis
request of them lies near a CAD call of another. For those two scenarios a report and a
crisis request are made up at the place and time of a real Milwaukee call; everything
else here is the real data.
"""

from __future__ import annotations

import pytest

from streams.offline import correlate, normalise_profile
from tests.unit.correlate.factories import event

MAY_2 = lambda m: m["event_time"].startswith("2018-05-02")  # noqa: E731
MAY_20 = lambda m: m["event_time"].startswith(("2018-05-19", "2018-05-20"))  # noqa: E731


@pytest.fixture(scope="module")
def may_2():
    events, _ = normalise_profile("milwaukee_pd_cfs", keep=MAY_2)
    return events


def test_two_shots_fired_calls_at_one_address_are_one_incident(may_2):
    # calls.csv: 1214135,2018-05-02 01:56:25,"3860 N 4TH ST,MKE",43.0872416,-87.9146614,SHOTS FIRED
    #            1214188,2018-05-02 02:04:28,"3864 N 4TH ST,MKE",43.0873368,-87.9145375,SHOTS FIRED
    # 8 minutes and about 15 m apart: one event, two callers.
    run = correlate(may_2)
    merged = [u for u in run.updates_of("cad:MPD:1214135") if u["kind"] == "merged"]
    assert len(merged) == 1
    assert merged[0]["state"]["calls"] == 2
    assert merged[0]["state"]["calls_merged"] == ["cad:MPD:1214188"]
    assert run.updates_of("cad:MPD:1214188") == []  # the second call raises no alert of its own


def test_shotspotter_and_a_caller_are_merged_into_the_earlier_call(may_2):
    events, _ = normalise_profile("milwaukee_pd_cfs",
                                  keep=lambda m: m["event_time"].startswith("2018-05-03"))
    # 1216642,2018-05-03 01:40:57,"N 41ST ST / W GARFIELD AV",43.0592392,-87.9646475,SHOTS FIRED
    # 1216640,2018-05-03 01:41:35,"2214 N 41ST ST",43.0596177,-87.9643958,SHOTSPOTTER
    run = correlate(events)
    [merged] = [u for u in run.updates_of("cad:MPD:1216642") if u["kind"] == "merged"]
    assert merged["state"]["calls_merged"] == ["cad:MPD:1216640"]


def test_a_report_near_a_real_call_is_linked_to_it(may_2):
    # A resident reports shots on N 4th St 20 minutes after call 1214135 (made up: see above).
    report = event("community", subject="watch-1", minutes=0, point=(43.0875, -87.9149),
                   category="violent", event_time="2018-05-02T07:16:00Z",
                   received_time="2018-05-02T07:16:00Z")
    run = correlate(may_2 + [report])
    linked = [u for u in run.updates_of("cad:MPD:1214135")
              if u["reason"] == "community report linked"]
    assert len(linked) == 1 and linked[0]["state"]["linked_reports"] == 1
    assert run.updates_of("report:MPD:watch-1") == []


def test_a_crisis_request_for_a_real_welfare_call_folds_into_it(may_2):
    # calls.csv: 1214042,2018-05-02 00:51:07,"3639 N 15TH ST,MKE",...,5,WELFARE CITIZEN,Advised
    [call] = [e for e in may_2 if e["subject_id"] == "cad:MPD:1214042"]
    assert call["type_text"] == "WELFARE CITIZEN" and call["mental_health"]
    crisis = event("crisis", subject="mct-7", kind="dispatched", point=None,
                   category="mental_health", incident_number="1214042",
                   event_time="2018-05-02T06:05:00Z", units=["MCT-1"])
    crisis["agency_id"] = "MPD"
    run = correlate(may_2 + [crisis])
    folded = [u for u in run.updates_of("cad:MPD:1214042") if u["reason"] == "crisis team dispatched"]
    assert folded and folded[0]["state"]["crisis"]["crisis:MPD:mct-7"]["team"] == "MCT-1"
    assert "crisis" in folded[0]["audience_flags"]


def test_a_real_hotspot_opens_and_closes():
    # 2018-05-20 03:37-04:15 CDT around W Mitchell St and S 11th-14th St: four ShotSpotter
    # alerts (1254270, 1254273, 1254284, 1254283) and a shots-fired call (1254312).
    events, _ = normalise_profile("milwaukee_pd_cfs", keep=MAY_20)
    run = correlate(events)
    hotspots = [u for u in run.updates if u["subject_kind"] == "hotspot"]
    assert [u["kind"] for u in hotspots] == ["hotspot_opened", "hotspot_closed"]
    opened, closed = hotspots
    assert opened["subject_id"] == closed["subject_id"]
    assert opened["state"]["category"] == "violent"
    assert set(opened["source_event_ids"]) == {
        "cad:MPD:1254270", "cad:MPD:1254273", "cad:MPD:1254284", "cad:MPD:1254283",
        "cad:MPD:1254312"}
    assert abs(opened["state"]["latitude"] - 43.0098) < 0.01
    assert opened["event_time"] < closed["event_time"]
    # Closed, it leaves the live picture (a tombstone on rtcc.sa.state): its id names its
    # window, so a later hotspot in the cell is another subject, and kept closed ones would
    # pile up in the compacted topic.
    assert run.tombstones.count(closed["subject_id"]) == 1
