"""Scenarios of the correlation engine: lifecycle, duplicates, reports, crisis, expiry."""

from __future__ import annotations

import orjson

from agents.correlate.engine import PUBLISHED, SUPPRESSIONS, CorrelationConfig, Correlator
from agents.correlate.ordering import event_ts
from tests.unit.correlate.factories import HERE, event, moved


def engine(**config) -> Correlator:
    return Correlator({}, {}, CorrelationConfig(**config))


def run(corr: Correlator, events: list[dict]) -> list[dict]:
    updates = []
    for e in events:
        result = corr.apply(e)
        assert len(result.dispositions) == 1
        assert result.dispositions[0] in (PUBLISHED, *SUPPRESSIONS)
        updates += result.updates
        updates += corr.advance(event_ts(e)).updates
    return updates


def test_lifecycle_opens_updates_and_closes_once():
    corr = engine()
    updates = run(corr, [
        event(kind="created", minutes=0),
        event(kind="dispatched", minutes=2, units=["A1"]),
        event(kind="on_scene", minutes=9, units=["A1"]),
        event(kind="closed", minutes=40, units=["A1"], disposition="Advised"),
    ])
    assert [u["kind"] for u in updates] == ["opened", "updated", "updated", "closed"]
    assert [u["version"] for u in updates] == [1, 2, 3, 4]
    final = updates[-1]["state"]
    assert final["status"] == "closed" and final["units"] == ["A1"]
    assert final["times"]["dispatched"] == "2018-05-01T05:02:00Z"
    assert final["times"]["on_scene"] == "2018-05-01T05:09:00Z"
    assert len({u["update_id"] for u in updates}) == 4


def test_a_repeated_event_is_suppressed_and_the_same_state_twice_is_one_update():
    corr = engine()
    first = event(kind="created", minutes=0)
    assert corr.apply(first).dispositions == [PUBLISHED]
    assert corr.apply(dict(first)).dispositions == ["duplicate_event"]
    again = event(kind="updated", minutes=1, event_id="other-id")
    result = corr.apply(again)
    assert result.updates == [] and result.dispositions == ["unchanged"]


def test_three_calls_about_one_event_give_one_incident_that_says_three_calls():
    corr = engine()
    updates = run(corr, [
        event(subject="1", minutes=0),
        event(subject="2", minutes=3, point=moved(HERE, north_m=40)),
        event(subject="3", minutes=6, point=moved(HERE, east_m=-50), category="disorder"),
    ])
    assert [(u["subject_id"], u["kind"]) for u in updates] == [
        ("cad:MPD:1", "opened"), ("cad:MPD:1", "merged"), ("cad:MPD:1", "merged")]
    assert updates[-1]["state"]["calls"] == 3
    assert updates[-1]["state"]["calls_merged"] == ["cad:MPD:2", "cad:MPD:3"]
    # later events of a merged call change the secondary silently
    result = corr.apply(event(subject="2", kind="dispatched", minutes=8, units=["B2"]))
    assert result.dispositions == ["merged_duplicate"] and not result.updates


def test_calls_too_far_too_late_or_unrelated_are_not_merged():
    corr = engine()
    updates = run(corr, [
        event(subject="1", minutes=0),
        event(subject="2", minutes=2, point=moved(HERE, north_m=150)),  # 150 m away
        event(subject="3", minutes=15, point=moved(HERE, north_m=10)),  # 15 min later
        event(subject="4", minutes=3, point=moved(HERE, north_m=10), category="property"),
    ])
    assert [u["kind"] for u in updates] == ["opened"] * 4


def test_community_report_near_an_active_incident_is_linked_and_raises_no_alert():
    corr = engine()
    run(corr, [event(subject="1", minutes=0)])
    result = corr.apply(event("community", subject="r1", minutes=12,
                              point=moved(HERE, east_m=120), category="disorder"))
    assert [u["subject_id"] for u in result.updates] == ["cad:MPD:1"]
    assert result.updates[0]["state"]["linked_reports"] == 1
    assert result.links == {"report": 1}


def test_single_reports_never_alert_but_a_cluster_does():
    corr = engine(cluster_min_reports=3)
    far = moved(HERE, north_m=5000)
    dispositions, updates = [], []
    for i in range(4):
        r = corr.apply(event("community", subject=f"r{i}", minutes=5 * i,
                             point=moved(far, east_m=30 * i), category="disorder"))
        dispositions += r.dispositions
        updates += r.updates
    assert dispositions[:2] == ["unclustered_report"] * 2
    assert [u["kind"] for u in updates] == ["cluster_opened", "cluster_updated"]
    assert updates[0]["subject_kind"] == "cluster" and updates[0]["state"]["reports"] == 3
    lapsed = corr.advance(event_ts(event(minutes=200)))
    assert [u["kind"] for u in lapsed.updates] == ["cluster_closed"]
    assert corr.groups == {}


def test_a_cluster_closes_at_the_same_event_time_however_the_watermark_advances():
    """A replay releases events in other batches than the live run did: the closing of a
    cluster must not depend on which advance of the watermark noticed it."""
    far = moved(HERE, north_m=5000)
    closed = []
    for steps in ([200], range(20, 201)):  # one jump; or a minute at a time
        corr = engine(cluster_min_reports=3)
        for i in range(3):
            corr.apply(event("community", subject=f"r{i}", minutes=5 * i,
                             point=moved(far, east_m=30 * i), category="disorder"))
        closed.append([u for minute in steps
                       for u in corr.advance(event_ts(event(minutes=minute))).updates])
    assert [u["kind"] for u in closed[0]] == ["cluster_closed"]
    assert closed[0] == closed[1]
    assert closed[0][0]["event_time"] == event(minutes=10 + 60)["event_time"]  # last + window


def test_crisis_request_links_to_its_cad_call_by_number_and_folds_in():
    corr = engine()
    run(corr, [event(subject="777", minutes=0, category="mental_health")])
    result = corr.apply(event("crisis", subject="q1", kind="dispatched", minutes=5,
                              incident_number="777", category="mental_health", units=["MCT-2"]))
    assert [u["subject_id"] for u in result.updates] == ["cad:MPD:777"]
    state = result.updates[0]["state"]
    assert state["crisis"] == {"crisis:MPD:q1": {"status": "dispatched", "team": "MCT-2",
                                                 "outcome": None, "time": "2018-05-01T05:05:00Z"}}
    assert "crisis" in result.updates[0]["audience_flags"]


def test_crisis_request_links_by_place_and_time_to_a_mental_health_call():
    corr = engine()
    run(corr, [event(subject="9", minutes=0, category="mental_health")])
    result = corr.apply(event("crisis", subject="q2", kind="requested", minutes=4,
                              point=moved(HERE, north_m=60), category="mental_health"))
    assert result.links == {"crisis": 1}


def test_unlinked_crisis_request_is_its_own_incident():
    corr = engine()
    result = corr.apply(event("crisis", subject="q3", kind="requested", minutes=0,
                              point=None, category="mental_health"))
    assert result.updates[0]["subject_id"] == "crisis:MPD:q3"
    assert result.updates[0]["kind"] == "opened"


def test_silent_incidents_close_and_state_stays_bounded():
    corr = engine(incident_ttl_s=3600, closed_retention_s=600)
    run(corr, [event(subject=str(i), minutes=i * 30, point=moved(HERE, north_m=500 * i))
               for i in range(20)])
    assert len(corr.incidents) <= 4  # only the last hour or so of incidents is kept
    closed = corr.advance(event_ts(event(minutes=20 * 30 + 200)))
    assert corr.incidents == {}
    assert closed.tombstones
    # and nothing derived from them is left in memory either
    assert corr.size()["indexed_cells"] == 0 and corr.size()["incident_numbers"] == 0


def test_restore_rebuilds_the_indexes_from_the_store():
    store, groups = {}, {}
    first = Correlator(store, groups)
    first.apply(event(subject="1", minutes=0))
    second = Correlator(store, groups)
    second.restore()
    result = second.apply(event(subject="2", minutes=2, point=moved(HERE, north_m=30)))
    assert result.merges == 1


def test_reports_outside_public_safety_never_cluster():
    corr = engine(cluster_min_reports=2)
    far = moved(HERE, north_m=5000)
    results = [corr.apply(event("community", subject=f"h{i}", minutes=i, point=far,
                                category="other")) for i in range(5)]
    assert all(r.dispositions == ["unclustered_report"] and not r.updates for r in results)
    assert corr.groups == {}


class JsonStore(dict):
    """Like a RocksDB-backed table: every read is a fresh copy, so a change that is not
    assigned back is lost."""

    def __getitem__(self, key):
        return orjson.loads(dict.__getitem__(self, key))

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, orjson.dumps(value))

    def get(self, key, default=None):
        return self[key] if key in self else default

    def values(self):
        return [self[k] for k in self]


def test_merges_persist_in_a_store_that_copies_on_read():
    corr = Correlator(JsonStore(), JsonStore(), CorrelationConfig())
    updates = run(corr, [
        event(subject="1", minutes=0),
        event(subject="2", minutes=3, point=moved(HERE, north_m=40)),
        event(subject="3", minutes=6, point=moved(HERE, east_m=-50)),
    ])
    assert [(u["kind"], u["version"], u["state"]["calls"]) for u in updates] == [
        ("opened", 1, 1), ("merged", 2, 2), ("merged", 3, 3)]
    assert corr.incidents["cad:MPD:1"]["calls"] == ["cad:MPD:2", "cad:MPD:3"]
