"""Normalised events for correlation tests, at real Milwaukee places."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import h3

BASE = datetime(2018, 5, 1, 5, 0, tzinfo=timezone.utc)
# 5237 N 35TH ST, Milwaukee (calls.csv id 1211372)
HERE = (43.1127987, -87.9567415)


def at(minutes: float) -> str:
    return (BASE + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def moved(point: tuple[float, float], north_m: float = 0.0, east_m: float = 0.0) -> tuple[float, float]:
    lat, lon = point
    return lat + north_m / 111_320.0, lon + east_m / (111_320.0 * 0.7304)  # cos(43.11)


def event(source: str = "cad", subject: str = "1", kind: str = "created", minutes: float = 0,
          point: tuple[float, float] | None = HERE, category: str = "violent",
          event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    prefix = {"cad": "cad:MPD", "crisis": "crisis:MPD", "community": "report:MPD"}[source]
    lat, lon = point if point else (None, None)
    doc = {
        "event_id": event_id or f"{source}:{subject}:{kind}:{minutes}",
        "source": source, "kind": "reported" if source == "community" else kind,
        "subject_id": f"{prefix}:{subject}", "agency_id": "MPD",
        "incident_number": subject if source == "cad" else None,
        "category": category, "mental_health": category in ("mental_health", "welfare"),
        "priority": 2, "event_time": at(minutes), "received_time": at(minutes),
        "latitude": lat, "longitude": lon,
        "cell": h3.latlng_to_cell(lat, lon, 9) if point else None,
        "area_key": "x", "district": "4", "units": [], "type_text": "BATTERY",
        "source_topic": f"{source}.events", "source_partition": 0, "source_offset": 0,
    }
    doc.update(extra)
    return doc
