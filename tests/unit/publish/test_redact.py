"""Redaction: allow-listed fields only, sensitive calls withheld, locations generalised."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import h3
from agents.publish.policy import Policies
from agents.publish.redact import SENT, WITHDRAWN, block_of, opaque, redact
from streams.config import DEFAULTS_DIR

POLICIES = Policies.load(DEFAULTS_DIR / "audiences.yaml")
SENS = POLICIES.sensitivity
PARTNER_AUDIENCES = ("community", "public")

# Personal data that must never reach a partner audience, wherever it sits in the state.
PII_FIELDS = ("name", "phone", "narrative", "caller_name", "caller_phone", "notes", "pii",
              "contact", "dob", "ssn")


def incident_update(version: int = 1, kind: str = "opened", changed=None, **state) -> dict:
    base = {
        "subject_id": "cad:MPD:1211372", "agency_id": "MPD", "incident_number": "1211372",
        "status": "dispatched", "priority": 2, "category": "violent", "mental_health": False,
        "type_code": "SHOTS FIRED", "type_text": "SHOTS FIRED", "latitude": 43.1127987,
        "longitude": -87.9567415, "cell": h3.latlng_to_cell(43.1127987, -87.9567415, 9),
        "address_text": "5237 N 35TH ST,MKE", "district": "4", "beat": "41",
        "units": ["A41"], "disposition": None, "times": {"received": "2018-05-01T05:10:28Z",
                                                      "dispatched": "2018-05-01T05:12:00Z"},
        "calls": 1, "linked_reports": 0, "crisis": {}, "merged_into": None,
    }
    base.update(state)
    return {
        "update_id": f"u-{version}", "subject_kind": "incident", "subject_id": base["subject_id"],
        "version": version, "kind": kind, "state": base, "event_time": "2018-05-01T05:12:00Z",
        "published_time": "2026-11-29T10:00:00Z", "reason": "call received",
        "changed": list(base) if changed is None else changed, "source_event_ids": ["cad:MPD:1"],
        "audience_flags": ["crisis"] if base["mental_health"] else [],
    }


def test_operator_sees_everything_named_and_nothing_else():
    update = incident_update(name="Jane Roe", phone="414-555-0100")
    out = redact(update, POLICIES["operator"], SENS)
    assert out.outcome == SENT
    assert out.payload["state"]["latitude"] == 43.1127987
    assert out.payload["state"]["units"] == ["A41"]
    assert "name" not in out.payload["state"] and "phone" not in out.payload["state"]


def test_community_gets_a_block_and_a_cell_centre_not_the_address():
    out = redact(incident_update(), POLICIES["community"], SENS)
    state = out.payload["state"]
    assert out.outcome == SENT
    assert state["address_text"] == "5200 block of N 35TH ST,MKE"
    assert h3.get_resolution(state["cell"]) == 8
    lat, lon = h3.cell_to_latlng(state["cell"])
    assert (state["latitude"], state["longitude"]) == (round(lat, 5), round(lon, 5))
    assert state["latitude"] != 43.1127987
    assert not {"units", "type_text", "type_code", "beat", "incident_number"} & set(state)
    assert state["times"] == {"received": "2018-05-01T05:10:28Z"}
    assert "reason" not in out.payload


@pytest.mark.parametrize("address,expected", [
    ("5237 N 35TH ST,MKE", "5200 block of N 35TH ST,MKE"),
    ("12 W MITCHELL ST", "0 block of W MITCHELL ST"),
    ("0 Block of MARINA BLVD", "0 block of MARINA BLVD"),
    ("N 41ST ST / W GARFIELD AVE", "N 41ST ST / W GARFIELD AVE"),
    ("SALVATION ARMY SHELTER", None),
    (None, None),
])
def test_block_of(address, expected):
    assert block_of(address) == expected


@pytest.mark.parametrize("sensitive_state", [
    {"category": "mental_health", "mental_health": True, "type_text": "EDP"},
    {"type_text": "SEX ASSAULT-DV", "type_code": "SEX ASSAULT-DV"},
    {"type_text": "SUBJ WITH GUN-DV"},
    {"type_text": "JUVENILE PROBLEM"},
    {"crisis": {"crisis:TPS:1": {"status": "on_scene"}}},
])
def test_sensitive_calls_never_reach_community(sensitive_state):
    out = redact(incident_update(**sensitive_state), POLICIES["community"], SENS)
    assert out.outcome == "sensitive_withheld" and out.payload is None
    # the crisis audience, which exists for them, does get the mental-health ones
    if sensitive_state.get("mental_health"):
        assert redact(incident_update(**sensitive_state), POLICIES["crisis"], SENS).outcome == SENT


def test_words_match_as_prefixes_of_whole_words_only():
    # "ESCORT" must not match "SEX"-like fragments, "DV" only as a word
    assert not SENS.matches({"type_text": "ADVISED", "category": "other"})
    assert SENS.matches({"type_text": "BATTERY-DV", "category": "violent"})


def test_an_incident_that_becomes_sensitive_is_withdrawn():
    later = incident_update(version=3, kind="updated", changed=["type_text"],
                            type_text="SEX ASSAULT")
    out = redact(later, POLICIES["community"], SENS)
    assert out.outcome == WITHDRAWN
    assert out.payload["state"] is None and out.payload["kind"] == "withdrawn"
    # an update of an incident that was sensitive from the start says nothing at all
    quiet = incident_update(version=3, kind="updated", changed=["status"], type_text="SEX ASSAULT")
    assert redact(quiet, POLICIES["community"], SENS).outcome == "sensitive_withheld"


def test_crisis_audience_gets_only_flagged_incidents():
    assert redact(incident_update(), POLICIES["crisis"], SENS).outcome == "not_flagged"
    hotspot = {"update_id": "h", "subject_kind": "hotspot", "subject_id": "hotspot:x",
               "version": 1, "kind": "hotspot_opened", "state": {}, "event_time": "t",
               "audience_flags": ["community", "public"]}
    assert redact(hotspot, POLICIES["crisis"], SENS).outcome == "subject_not_shared"


def test_public_gets_counts_not_incidents():
    out = redact(incident_update(), POLICIES["public"], SENS)
    assert out.outcome == "aggregated" and out.payload["aggregate"] is True
    assert out.payload["subject_id"] == opaque("cad:MPD:1211372") != "cad:MPD:1211372"
    assert out.payload["state"] == {
        "category": "violent", "district": "4", "status": "open",
        "cell": h3.latlng_to_cell(43.1127987, -87.9567415, 7)}
    sensitive = redact(incident_update(type_text="DOMESTIC VIOLENCE"), POLICIES["public"], SENS)
    assert sensitive.payload["state"] == {"category": "sensitive", "district": "4",
                                          "status": "open"}


def test_an_update_with_no_change_the_audience_can_see_is_suppressed():
    units_only = incident_update(version=2, kind="updated", changed=["units"])
    assert redact(units_only, POLICIES["community"], SENS).outcome == "unchanged_for_audience"
    assert redact(units_only, POLICIES["operator"], SENS).outcome == SENT


def test_delay_sets_a_release_time():
    policy = POLICIES["community"].__class__(**{**POLICIES["community"].__dict__, "delay_s": 900})
    out = redact(incident_update(), policy, SENS)
    assert out.payload["release_time"] == "2026-11-29T10:15:00Z"


# --- property: whatever the state carries, partners get only what their policy names ------

pii_text = st.text(alphabet="abcdefghij", min_size=4, max_size=8).map(lambda s: f"PII-{s}-X")
types = st.sampled_from(["SHOTS FIRED", "SEX ASSAULT-DV", "EDP", "JUVENILE PROBLEM",
                         "THEFT", "SUBJ WITH GUN-DV", "OVERDOSE", "TRAFFIC ACCIDENT",
                         "DOMESTIC", "WELFARE CITIZEN", "CHILD ABUSE", "ESCORT"])
categories = st.sampled_from(["violent", "property", "traffic", "disorder", "medical", "fire",
                              "mental_health", "welfare", "proactive", "other"])


@st.composite
def hostile_updates(draw):
    lat = draw(st.floats(43.0, 43.2, allow_nan=False))
    lon = draw(st.floats(-88.05, -87.85, allow_nan=False))
    pii = {f: draw(pii_text) for f in PII_FIELDS}
    mental = draw(st.booleans())
    state = dict(
        category=draw(categories), type_text=draw(types), type_code=draw(types),
        mental_health=mental, latitude=lat, longitude=lon,
        cell=h3.latlng_to_cell(lat, lon, 9), address_text=f"{draw(st.integers(1, 9999))} W WELLS ST",
        crisis=draw(st.sampled_from([{}, {"crisis:TPS:1": {"status": "on_scene",
                                                           "team": pii["contact"]}}])),
        **pii)
    state["pii"] = {"name": pii["name"], "phone": pii["phone"], "narrative": pii["narrative"]}
    state["times"] = {"received": "2018-05-01T05:10:28Z", "note": pii["notes"]}
    version = draw(st.integers(1, 5))
    kind = draw(st.sampled_from(["opened", "updated", "closed", "merged"]))
    changed = draw(st.lists(st.sampled_from(sorted(state)), max_size=6))
    update = incident_update(version=version, kind=kind, changed=changed, **state)
    update["reason"] = f"reason with {pii['narrative']}"
    return update, pii


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_updates())
def test_partner_payloads_never_carry_withheld_fields_or_exact_sensitive_locations(case):
    update, pii = case
    sensitive = SENS.matches(update["state"])
    exact = (update["state"]["latitude"], update["state"]["longitude"])
    for audience in PARTNER_AUDIENCES:
        policy = POLICIES[audience]
        out = redact(update, policy, SENS)
        if out.payload is None:
            continue
        blob = orjson.dumps(out.payload).decode()
        for value in pii.values():
            assert value not in blob, (audience, value)
        state = out.payload["state"] or {}
        allowed_top = {f.split(".")[0] for f in policy.fields_of("incident")}
        assert set(state) <= allowed_top
        assert not set(out.payload) & {"reason", "source_event_ids", "audience_flags"}
        if sensitive:
            # withdrawn (no state) or a count without any place finer than a district
            assert out.payload["kind"] == WITHDRAWN or out.payload.get("aggregate")
            assert not {"latitude", "longitude", "cell", "address_text"} & set(state)
            assert not {"latitude", "longitude", "cell"} & set(state)
        if "latitude" in state:
            assert (state["latitude"], state["longitude"]) != exact
            centre = h3.cell_to_latlng(h3.latlng_to_cell(*exact, policy.location_resolution))
            assert (state["latitude"], state["longitude"]) == (round(centre[0], 5),
                                                               round(centre[1], 5))
        if "cell" in state:
            assert h3.get_resolution(state["cell"]) <= policy.location_resolution
