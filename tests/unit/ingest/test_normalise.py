"""Validation and normalisation of each source, on messages built from real rows."""

from __future__ import annotations

import orjson
import pytest

from agents.ingest.normalise import Origin, ingest, normalise_cad, normalise_community, normalise_crisis
from agents.ingest.rejection import Rejected

from tests.samples import MKE_CALL, NYC_NOISE, SF_ON_SCENE, TORONTO


def test_milwaukee_call(policy, origin):
    ev = normalise_cad(dict(MKE_CALL), policy, origin)
    assert ev.event_id == "cad:MPD:1211372"
    assert ev.subject_id == "cad:MPD:1211372"
    assert ev.event_time == "2018-05-01T05:10:28Z"  # CDT is UTC-5
    assert (ev.category, ev.mental_health, ev.priority) == ("disorder", False, 3)
    assert ev.cell is not None and ev.area_key is not None
    assert (ev.source_topic, ev.source_partition, ev.source_offset) == ("cad.events", 2, 41)
    assert ev.pii is None


def test_naive_times_are_read_in_the_agency_zone(policy, origin):
    ev = normalise_cad({**MKE_CALL, "event_time": "2018-05-01 00:10:28"}, policy, origin)
    assert ev.event_time == "2018-05-01T05:10:28Z"


def test_sf_fire_lifecycle_step(policy, origin):
    ev = normalise_cad(dict(SF_ON_SCENE), policy, origin)
    assert ev.kind == "on_scene"
    assert ev.subject_id == "cad:SFFD:16146989"
    assert ev.event_time == "2017-01-01T08:00:32Z"
    assert ev.received_time == "2017-01-01T07:52:01Z"
    assert (ev.category, ev.priority) == ("medical", 1)  # SF priority 3 is an emergency
    assert ev.units == ["E38"]


def test_pii_is_kept_apart(policy, origin):
    ev = normalise_cad({**MKE_CALL, "caller_name": "Jane Roe", "caller_phone": "414-555-0100",
                        "narrative": "caller says"}, policy, origin)
    assert (ev.pii.name, ev.pii.phone, ev.pii.narrative) == ("Jane Roe", "414-555-0100", "caller says")
    top_level = {k: v for k, v in ev.asdict().items() if k != "pii"}
    assert "Jane Roe" not in orjson.dumps(top_level, default=str).decode()


def test_numeric_ids_are_read_as_strings(policy, origin):
    ev = normalise_cad({**MKE_CALL, "event_id": 1211372, "incident_number": 1211372}, policy, origin)
    assert ev.incident_number == "1211372"


def test_toronto_crisis_without_coordinates(policy, origin):
    ev = normalise_crisis(dict(TORONTO), policy, origin)
    assert ev.mental_health is True
    assert ev.category == "mental_health"
    assert ev.latitude is None and ev.cell is None
    assert ev.area_key == "district:TPS:D13"
    assert ev.event_time == "2014-01-01T16:00:00Z"  # EST is UTC-5
    assert ev.priority <= 2


def test_crisis_event_links_to_cad_number(policy, origin):
    ev = normalise_crisis({**TORONTO, "incident_number": "F14000123"}, policy, origin)
    assert ev.incident_number == "F14000123"


def test_nyc_community_report(policy, origin):
    ev = normalise_community(dict(NYC_NOISE), policy, origin)
    assert ev.source == "community" and ev.kind == "reported"
    assert ev.subject_id == "report:NYC311:40605866"
    assert ev.category == "disorder"
    assert ev.priority >= 3  # an unverified report is never urgent
    assert ev.community_source == "311"


def _reason(normaliser, msg, policy, origin):
    with pytest.raises(Rejected) as err:
        normaliser(msg, policy, origin)
    return err.value.reason, err.value.field


@pytest.mark.parametrize(
    "change, reason, field",
    [
        ({"event_id": None}, "missing_field", "event_id"),
        ({"incident_number": "  "}, "missing_field", "incident_number"),
        ({"event_type": "exploded"}, "unknown_value", "event_type"),
        ({"event_time": "yesterday"}, "invalid_time", "event_time"),
        ({"event_time": "1900-01-01T00:00:00Z"}, "time_out_of_range", "event_time"),
        ({"event_time": "2100-01-01T00:00:00Z"}, "time_out_of_range", "event_time"),
        ({"received_time": "2026-11-01T01:00:00Z"}, "time_out_of_range", "received_time"),
        ({"latitude": "43.1"}, "wrong_type", "latitude"),
        ({"latitude": True}, "wrong_type", "latitude"),
        ({"latitude": 47.3744541, "longitude": -115.3772057}, "outside_service_area", "latitude"),
        ({"longitude": None}, "invalid_coordinates", "longitude"),
        ({"units": "E38"}, "wrong_type", "units"),
        ({"units": [{"id": 1}]}, "wrong_type", "units"),
        ({"incident_type_text": "X" * 10_000}, "oversized_field", "incident_type_text"),
        ({"schema_version": 2}, "unsupported_schema_version", "schema_version"),
        ({"agency_id": ["MPD"]}, "wrong_type", "agency_id"),
    ],
)
def test_cad_rejections_are_specific(policy, origin, change, reason, field):
    assert _reason(normalise_cad, {**MKE_CALL, **change}, policy, origin) == (reason, field)


def test_small_clock_skew_is_tolerated(policy, origin):
    ev = normalise_cad({**MKE_CALL, "event_time": "2026-11-01T00:04:00Z"}, policy, origin)
    assert ev.event_time == "2026-11-01T00:04:00Z"


def test_unknown_fields_are_ignored(policy, origin):
    assert normalise_cad({**MKE_CALL, "vendor_extension": {"x": 1}}, policy, origin)


@pytest.mark.parametrize(
    "change, reason",
    [({"status": "teleported"}, "unknown_value"), ({"request_id": None}, "missing_field")],
)
def test_crisis_rejections(policy, origin, change, reason):
    assert _reason(normalise_crisis, {**TORONTO, **change}, policy, origin)[0] == reason


@pytest.mark.parametrize(
    "change, reason",
    [({"source": "carrier-pigeon"}, "unknown_value"), ({"reported_time": "10/21/18 0:00"}, "invalid_time")],
)
def test_community_rejections(policy, origin, change, reason):
    assert _reason(normalise_community, {**NYC_NOISE, **change}, policy, origin)[0] == reason


def test_ingest_runs_the_whole_stage(policy):
    origin = Origin("community.reports", 0, 7, 1_540_094_400_000)
    ev = ingest("community", orjson.dumps(NYC_NOISE), policy, origin)
    assert ev.ingest_time == "2018-10-21T04:00:00Z"
    with pytest.raises(Rejected) as err:
        ingest("community", b"{", policy, origin)
    assert err.value.reason == "malformed_json"
