"""Hotspot and community-cluster SA updates as OASIS CAP 1.2 alerts (pure).

CAP is what public alerting systems, sirens and apps already read, so hotspots and
clusters go out in it rather than in our own JSON. One subject (a hotspot or a cluster) is
one thread of alerts: its first update is an `Alert`, later ones `Update`s, and its end a
`Cancel`; every `Update` and `Cancel` names the earlier alerts of the thread in
`references` ("sender,identifier,sent" triples), so that a consumer replaces or withdraws
what it is showing.

Identifiers are derived from the subject id and the update's version, so any worker
renders the same alert for the same update and the identifier of an earlier alert is
known without storing it. Its `sent` time is not always: an alert is sent at the update's
`published_time` (else its `event_time`), which only the publisher saw. So the earlier
alerts can be passed in (`previous`, what a publisher keeps per subject, or
`hotspot_thread_to_cap` for a whole thread); if they are not, the first alert of a hotspot
is referenced with its `opened_time`, which is its `sent` when alerts are stamped with
event time, and later earlier alerts whose time is unknown are left out.

Works on redacted updates: any state field may be missing and is then left out of the
alert (the polygon comes from the H3 cell, so a generalised location still gives an area).
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote
from xml.etree import ElementTree as ET

import h3

from agents.ingest.times import as_utc

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"

# (identifier, sent) of an earlier alert of the same sender and subject.
Reference = tuple[str, str]

# Our call categories to CAP's <category> values (CAP 1.2, 3.2.2).
CAP_CATEGORIES = {
    "violent": "Security", "property": "Security", "disorder": "Security",
    "proactive": "Security", "traffic": "Transport", "medical": "Health",
    "mental_health": "Health", "welfare": "Safety", "fire": "Fire", "other": "Other",
}

# CAP forbids these in identifiers and senders: references are comma- and space-separated.
_RESTRICTED = re.compile(r"[%\s,<&]")


def alert_identifier(subject_id: str, version: int) -> str:
    """The identifier of a subject's alert for one version: readable and injective
    (restricted characters are percent-encoded)."""
    return f"{_RESTRICTED.sub(lambda m: quote(m.group(), safe=''), subject_id)}:v{int(version)}"


def cap_time(value: Any) -> str | None:
    """An ISO-8601 time as CAP's dateTime: whole seconds, UTC written "-00:00" (CAP 1.2
    forbids "Z"). None when the value is missing or unreadable."""
    when = as_utc(value)
    return when.strftime("%Y-%m-%dT%H:%M:%S-00:00") if when else None


def msg_type(kind: str) -> str:
    """Alert for an opening, Cancel for a closing (or a withdrawal), Update otherwise."""
    if kind.endswith("opened"):
        return "Alert"
    if kind.endswith("closed") or kind == "withdrawn":
        return "Cancel"
    return "Update"


def alert_sent(update: Mapping[str, Any]) -> str:
    """When the alert of this update is sent: its publication time, else its event time."""
    sent = cap_time(update.get("published_time")) or cap_time(update.get("event_time"))
    if sent is None:
        raise ValueError(f"update {update.get('update_id')!r} has no readable event_time")
    return sent


def alert_reference(update: Mapping[str, Any]) -> Reference:
    """(identifier, sent) of this update's alert: what a publisher keeps to reference it."""
    return alert_identifier(update["subject_id"], update["version"]), alert_sent(update)


def derived_references(update: Mapping[str, Any]) -> list[Reference]:
    """The earlier alerts of the subject that can be named from this update alone.

    Only a hotspot's first alert has a known time (its state's `opened_time`, the event
    time of the opening); see the module docstring.
    """
    state = update.get("state") or {}
    if update.get("version", 1) <= 1 or update.get("subject_kind") != "hotspot":
        return []
    sent = cap_time(state.get("opened_time"))
    return [(alert_identifier(update["subject_id"], 1), sent)] if sent else []


def hotspot_to_cap(update: Mapping[str, Any], sender: str,
                   previous: Sequence[Reference] | None = None) -> str:
    """The CAP 1.2 alert (an XML document) of a hotspot or cluster SA update.

    `previous`: (identifier, sent) of the earlier alerts of the same subject, oldest
    first; None derives what it can (`derived_references`). Only an Update or Cancel
    carries references.
    """
    if update.get("subject_kind") not in ("hotspot", "cluster"):
        raise ValueError(f"CAP renders hotspots and clusters, not {update.get('subject_kind')!r}")
    if not sender or _RESTRICTED.search(sender):
        raise ValueError(f"a CAP sender has no spaces, commas, '<' or '&': {sender!r}")
    kind = str(update.get("kind", ""))
    mtype = msg_type(kind)
    refs = list(derived_references(update) if previous is None else previous)
    alert = ET.Element(_q("alert"))
    _add(alert, "identifier", alert_identifier(update["subject_id"], update["version"]))
    _add(alert, "sender", sender)
    _add(alert, "sent", alert_sent(update))
    _add(alert, "status", "Actual")
    _add(alert, "msgType", mtype)
    _add(alert, "scope", "Public")
    if mtype != "Alert" and refs:
        _add(alert, "references", " ".join(f"{sender},{i},{s}" for i, s in refs))
    alert.append(_info(update, mtype))
    body = ET.tostring(alert, encoding="unicode", default_namespace=CAP_NS)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def hotspot_thread_to_cap(updates: Iterable[Mapping[str, Any]], sender: str) -> list[str]:
    """The alerts of one subject's updates, in version order, each referencing all the
    alerts before it with their exact sent times."""
    alerts, earlier = [], []
    for update in sorted(updates, key=lambda u: u["version"]):
        alerts.append(hotspot_to_cap(update, sender, previous=list(earlier)))
        earlier.append(alert_reference(update))
    return alerts


# --- <info> ------------------------------------------------------------------------------------

def assessment(update: Mapping[str, Any], mtype: str) -> tuple[str, str, str, str]:
    """(responseType, urgency, severity, certainty) from the subject and its level.

    A hotspot counts calls that were made (Observed); level 1 is unusual (Moderate, act
    within the hour), level 2 very unusual (Severe, Immediate, keep away). A cluster is
    community reports, not verified (Likely, Minor). A closing is Past and all clear.
    """
    state = update.get("state") or {}
    certainty = "Observed" if update.get("subject_kind") == "hotspot" else "Likely"
    if mtype == "Cancel":
        return "AllClear", "Past", "Minor", certainty
    if update.get("subject_kind") != "hotspot":
        return "Monitor", "Expected", "Minor", certainty
    if _int(state.get("level")) == 2:
        return "Avoid", "Immediate", "Severe", certainty
    return "Monitor", "Expected", "Moderate", certainty


def _info(update: Mapping[str, Any], mtype: str) -> ET.Element:
    state = update.get("state") or {}
    hotspot = update.get("subject_kind") == "hotspot"
    category = state.get("category")
    label = str(category).replace("_", " ") if category else None
    event = (f"Hotspot of {label} calls" if label else "Hotspot of calls") if hotspot else \
        (f"Cluster of {label} community reports" if label else "Cluster of community reports")
    response, urgency, severity, certainty = assessment(update, mtype)
    info = ET.Element(_q("info"))
    _add(info, "language", "en-US")
    _add(info, "category", CAP_CATEGORIES.get(str(category), "Other"))
    _add(info, "event", event)
    _add(info, "responseType", response)
    _add(info, "urgency", urgency)
    _add(info, "severity", severity)
    _add(info, "certainty", certainty)
    onset = cap_time(state.get("window_start") if hotspot else state.get("first_report"))
    if onset and mtype != "Cancel":
        _add(info, "onset", onset)
    _add(info, "headline", _headline(event, state, mtype, hotspot))
    description = update.get("reason") or _description(state, hotspot)
    if description:
        _add(info, "description", description)
    for name, value in _parameters(state, hotspot):
        parameter = ET.SubElement(info, _q("parameter"))
        _add(parameter, "valueName", name)
        _add(parameter, "value", value)
    area = _area(state)
    if area is not None:
        info.append(area)
    return info


def _headline(event: str, state: Mapping[str, Any], mtype: str, hotspot: bool) -> str:
    if mtype == "Cancel":
        return f"{event}: back to usual" if hotspot else f"{event}: no new reports"
    level = _int(state.get("level"))
    return f"{event}, level {level}" if hotspot and level else event


def _description(state: Mapping[str, Any], hotspot: bool) -> str | None:
    """A plain account from the state, for audiences that do not get the reason text."""
    label = str(state.get("category", "")).replace("_", " ")
    count = _int(state.get("count") if hotspot else state.get("reports"))
    if count is None:
        return None
    noun = "calls" if hotspot else "community reports"
    start, end = (("window_start", "window_end") if hotspot else ("first_report", "last_report"))
    since, until = cap_time(state.get(start)), cap_time(state.get(end))
    span = f" between {since} and {until}" if since and until else ""
    return " ".join(f"{count} {label} {noun}{span}.".split())


def _parameters(state: Mapping[str, Any], hotspot: bool) -> list[tuple[str, str]]:
    names = ("level", "count", "window_start", "window_end", "peak_count") if hotspot \
        else ("reports", "first_report", "last_report")
    return [(name, str(state[name])) for name in names if state.get(name) is not None]


# --- <area> ------------------------------------------------------------------------------------

def _area(state: Mapping[str, Any]) -> ET.Element | None:
    """The H3 cell's hexagon as a polygon (with the cell as a geocode); a circle around
    the coordinates when there is no cell; only a description for a district."""
    cell = _cell(state)
    point = _point(state)
    district = state.get("district") or _district(state.get("area"))
    if cell is None and point is None and not district:
        return None
    area = ET.Element(_q("area"))
    if cell is not None:
        lat, lon = point or h3.cell_to_latlng(cell)
        desc = f"H3 cell {cell} (resolution {h3.get_resolution(cell)}) around {lat:.4f},{lon:.4f}"
    elif point is not None:
        desc = f"Within {_radius_km(state):g} km of {point[0]:.4f},{point[1]:.4f}"
    else:
        desc = f"Area {district}"
    _add(area, "areaDesc", desc)
    if cell is not None:
        _add(area, "polygon", cap_polygon(cell))
    elif point is not None:
        _add(area, "circle", f"{point[0]:.6f},{point[1]:.6f} {_radius_km(state):g}")
    if cell is not None:
        geocode = ET.SubElement(area, _q("geocode"))
        _add(geocode, "valueName", "H3")
        _add(geocode, "value", cell)
    return area


def cap_polygon(cell: str) -> str:
    """An H3 cell's boundary as a CAP polygon: closed ring of "lat,lon" pairs."""
    ring = [f"{lat:.6f},{lon:.6f}" for lat, lon in h3.cell_to_boundary(cell)]
    return " ".join(ring + ring[:1])


def _cell(state: Mapping[str, Any]) -> str | None:
    location = state.get("location") if isinstance(state.get("location"), Mapping) else {}
    for value in (state.get("cell"), location.get("cell"), state.get("area")):
        if isinstance(value, str) and h3.is_valid_cell(value):
            return value
    return None


def _point(state: Mapping[str, Any]) -> tuple[float, float] | None:
    location = state.get("location") if isinstance(state.get("location"), Mapping) else {}
    for source in (state, location):
        lat, lon = _float(source.get("latitude")), _float(source.get("longitude"))
        if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
            return lat, lon
    return None


def _radius_km(state: Mapping[str, Any]) -> float:
    """Radius of the area around a bare point: the cell size it stands for, else 0.5 km."""
    resolution = _int(state.get("cell_resolution"))
    if resolution is not None and 0 <= resolution <= 15:
        return round(h3.average_hexagon_edge_length(resolution, "km"), 3)
    return 0.5


def _district(area: Any) -> str | None:
    """A cluster's area when it is not a cell (events without coordinates) names a district."""
    return area if isinstance(area, str) and area and not h3.is_valid_cell(area) else None


# --- helpers -----------------------------------------------------------------------------------

def _q(tag: str) -> str:
    return f"{{{CAP_NS}}}{tag}"


def _add(parent: ET.Element, tag: str, text: str) -> ET.Element:
    child = ET.SubElement(parent, _q(tag))
    child.text = text
    return child


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if math.isfinite(value) else None
