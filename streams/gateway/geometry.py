"""The service areas' own geometry as GeoJSON: what the offline dashboard draws its map on."""

from __future__ import annotations

from typing import Any

import yaml

from streams.config import Settings


def service_area_features(settings: Settings) -> dict[str, Any]:
    doc = yaml.safe_load(settings.service_areas_file.read_text())
    features = []
    for area in doc.get("areas") or ():
        min_lat, min_lon, max_lat, max_lon = (float(v) for v in area["bbox"])
        ring = [[min_lon, min_lat], [max_lon, min_lat], [max_lon, max_lat], [min_lon, max_lat],
                [min_lon, min_lat]]
        features.append({"type": "Feature", "id": area["agency_id"],
                         "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": {"agency_id": area["agency_id"], "name": area.get("name")}})
    return {"type": "FeatureCollection", "features": features}
