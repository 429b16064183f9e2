import math

import h3
import pytest

from agents.ingest.geo import ServiceAreas, area_key, cell_of
from agents.ingest.rejection import Rejected
from streams.config import DEFAULTS_DIR


@pytest.fixture(scope="module")
def areas() -> ServiceAreas:
    return ServiceAreas.load(DEFAULTS_DIR / "service_areas.yaml")


def test_inside_own_area(areas):
    areas.check("MPD", 43.1127987, -87.9567415)  # 5237 N 35TH ST, Milwaukee


@pytest.mark.parametrize(
    "lat, lon, reason",
    [
        (47.3744541, -115.3772057, "outside_service_area"),  # Milwaukee row 1211471: Idaho
        (40.71, -73.87, "outside_service_area"),  # a New York point for a Milwaukee call
        (91.0, 0.0, "invalid_coordinates"),
        (0.0, 181.0, "invalid_coordinates"),
        (math.nan, -87.9, "invalid_coordinates"),
        (math.inf, -87.9, "invalid_coordinates"),
        (43.1, None, "invalid_coordinates"),
    ],
)
def test_refuses_bad_coordinates(areas, lat, lon, reason):
    with pytest.raises(Rejected) as err:
        areas.check("MPD", lat, lon)
    assert err.value.reason == reason


def test_no_coordinates_is_allowed(areas):
    areas.check("TPS", None, None)


def test_unknown_agency_must_lie_in_some_area(areas):
    areas.check("MCSO", 43.05, -87.95)
    with pytest.raises(Rejected):
        areas.check("MCSO", 10.0, 10.0)


def test_cells_and_area_keys():
    cell = cell_of(43.1127987, -87.9567415, 9)
    assert h3.get_resolution(cell) == 9
    key = area_key(cell, "MPD", "4", 6)
    assert h3.cell_to_parent(cell, 6) == key  # the area is the ancestor of the event's cell
    assert area_key(None, "TPS", "D51", 6) == "district:TPS:D51"


def test_timezones(areas):
    assert str(areas.zone_of("MPD")) == "America/Chicago"
    assert str(areas.zone_of("nobody")) == "UTC"


def test_events_near_an_area_border_reach_the_neighbouring_area():
    from agents.ingest.geo import neighbour_areas

    lat, lon = 43.1127987, -87.9567415
    own = h3.cell_to_parent(h3.latlng_to_cell(lat, lon, 9), 6)
    near_border = None
    for step in range(3000):  # walk east until the area changes
        point = (lat, lon + step * 0.0002)
        if h3.cell_to_parent(h3.latlng_to_cell(*point, 9), 6) != own:
            near_border = (lat, lon + (step - 1) * 0.0002)
            other = h3.cell_to_parent(h3.latlng_to_cell(*point, 9), 6)
            break
    assert near_border is not None
    assert other in neighbour_areas(h3.latlng_to_cell(*near_border, 9), 2, 6)
    # the centre of an area is far from every border: no ghosts
    centre = h3.cell_to_latlng(own)
    assert neighbour_areas(h3.latlng_to_cell(*centre, 9), 2, 6) == ()
