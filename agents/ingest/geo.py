"""Where an event is: service-area checks and spatial cells.

Cells are H3 hexagons, not geohashes: H3 cells have near-equal area everywhere and six
equidistant neighbours, so a hotspot count per cell compares like with like and the
"nearby" lookup across a cell border is one `grid_disk` call; geohash cells change shape
with latitude and have eight unequal neighbours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import h3
import yaml

from agents.ingest.rejection import Rejected


@dataclass(frozen=True)
class ServiceArea:
    agency_id: str
    name: str
    min_lat: float
    min_lon: float
    max_lat: float
    max_lon: float
    timezone: ZoneInfo

    def contains(self, lat: float, lon: float) -> bool:
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon


class ServiceAreas:
    """The configured areas, by agency."""

    def __init__(self, areas: list[ServiceArea], default_zone: ZoneInfo | None = None):
        self.areas = areas
        self.by_agency = {a.agency_id: a for a in areas}
        self.default_zone = default_zone or ZoneInfo("UTC")

    @classmethod
    def load(cls, path: Path) -> "ServiceAreas":
        doc = yaml.safe_load(Path(path).read_text())
        areas = [
            ServiceArea(
                agency_id=str(a["agency_id"]),
                name=str(a.get("name", a["agency_id"])),
                min_lat=float(a["bbox"][0]), min_lon=float(a["bbox"][1]),
                max_lat=float(a["bbox"][2]), max_lon=float(a["bbox"][3]),
                timezone=ZoneInfo(a.get("timezone", "UTC")),
            )
            for a in doc.get("areas", [])
        ]
        return cls(areas)

    def zone_of(self, agency_id: str) -> ZoneInfo:
        area = self.by_agency.get(agency_id)
        return area.timezone if area else self.default_zone

    def check(self, agency_id: str, lat: float | None, lon: float | None) -> None:
        """Refuse coordinates that are half-given, impossible, or outside the area."""
        if lat is None and lon is None:
            return
        if lat is None or lon is None:
            raise Rejected("invalid_coordinates", "latitude" if lat is None else "longitude",
                           "only one of latitude/longitude given")
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise Rejected("invalid_coordinates", "latitude", "not finite")
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise Rejected("invalid_coordinates", "latitude", "outside WGS-84 range")
        area = self.by_agency.get(agency_id)
        candidates = [area] if area else self.areas
        if not any(a.contains(lat, lon) for a in candidates):
            where = area.name if area else "every configured area"
            raise Rejected("outside_service_area", "latitude", f"({lat:.4f}, {lon:.4f}) outside {where}")


def cell_of(lat: float, lon: float, resolution: int) -> str:
    return h3.latlng_to_cell(lat, lon, resolution)


def area_key(cell: str | None, agency_id: str, district: str | None, resolution: int) -> str:
    """Partition key of the normalised topic: nearby events share it.

    The area is the ancestor of the event's fine cell (not the coarse cell containing the
    point, which can differ near borders: H3 children do not tile their parent exactly), so
    that areas, hotspot cells and border ghosts all agree on which area an event is in.
    """
    if cell is not None:
        return h3.cell_to_parent(cell, resolution)
    return f"district:{agency_id}:{district or 'unknown'}"


@lru_cache(maxsize=8192)
def neighbour_areas(cell: str, margin_rings: int, resolution: int) -> tuple[str, ...]:
    """Other areas (cells at `resolution`) within `margin_rings` fine cells of `cell`.

    An event this close to the border of its area is also sent, as a ghost copy, to each of
    these areas, so that a duplicate call or a report across the border meets the incident
    it belongs to (see agents/correlate/engine.py, "Borders").

    Remembered: a city's calls come from a few thousand fine cells, and the disk's parents
    (two rings: 19 cells, 20 `cell_to_parent` calls) were a fifth of ingest's CPU per event
    (bench/NOTES.md section 41).
    """
    own = h3.cell_to_parent(cell, resolution)
    return tuple(sorted({h3.cell_to_parent(c, resolution)
                         for c in h3.grid_disk(cell, margin_rings)} - {own}))
