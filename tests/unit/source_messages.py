"""Source messages as an agent receives them from Faust, for the agents' own functions."""

from __future__ import annotations

import time
import uuid
from typing import Any

import h3
import orjson
from faust.types import TP
from faust.types.tuples import Message

from tests.samples import MKE_CALL


def message(source_topic: str, doc: dict[str, Any] | bytes, offset: int = 0) -> Message:
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return Message(source_topic, 0, offset, time.time(), 0, [], b"k", raw, None,
                   tp=TP(source_topic, 0))


def near_area_border() -> dict[str, Any]:
    """The Milwaukee call moved to 50 m inside a corner of its area (H3 res 6) cell: it is
    normalised with ghosts for the neighbouring areas."""
    area = h3.latlng_to_cell(MKE_CALL["latitude"], MKE_CALL["longitude"], 6)
    corner = h3.cell_to_boundary(area)[0]
    centre = h3.cell_to_latlng(area)
    k = 0.995
    lat = centre[0] + (corner[0] - centre[0]) * k
    lon = centre[1] + (corner[1] - centre[1]) * k
    return {**MKE_CALL, "event_id": f"ghost-{uuid.uuid4().hex[:6]}", "latitude": lat,
            "longitude": lon}
