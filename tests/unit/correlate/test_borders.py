"""Two areas agree on merges and links across their border, each seeing ghosts of the other."""

from __future__ import annotations

import h3

from agents.correlate.engine import Correlator
from agents.ingest.geo import neighbour_areas
from tests.unit.correlate.factories import HERE, event, moved

AREA_RES, CELL_RES = 6, 9


def _area(point) -> str:
    return h3.cell_to_parent(h3.latlng_to_cell(*point, CELL_RES), AREA_RES)


def _straddle() -> tuple[tuple[float, float], tuple[float, float]]:
    """Two points 40 m apart on either side of an area border near HERE."""
    point = HERE
    for step in range(2000):
        a, b = moved(HERE, east_m=20 * step), moved(HERE, east_m=20 * step + 40)
        if _area(a) != _area(b):
            return a, b
    raise AssertionError("no border found")


def _deliver(areas: dict[str, Correlator], e: dict) -> dict[str, list]:
    """Send an event to its area, and ghosts of it to the neighbouring areas it is near."""
    home = _area((e["latitude"], e["longitude"]))
    out = {home: [areas[home].apply(dict(e, area_key=home))]}
    for other in neighbour_areas(e["cell"], 2, AREA_RES):
        if other in areas:
            out[other] = [areas[other].apply(dict(e, area_key=other, ghost=True))]
    return out


def test_a_duplicate_call_across_the_border_is_merged_once():
    a_point, b_point = _straddle()
    areas = {_area(a_point): Correlator({}, {}), _area(b_point): Correlator({}, {})}
    first = _deliver(areas, event(subject="1", minutes=0, point=a_point))
    second = _deliver(areas, event(subject="2", minutes=3, point=b_point))

    a, b = _area(a_point), _area(b_point)
    assert [u["kind"] for u in first[a][0].updates] == ["opened"]
    assert first[b][0].updates == [] and first[b][0].dispositions == []  # a ghost: nothing
    # the second call's own area suppresses it as a duplicate of the remote incident...
    assert second[b][0].updates == [] and second[b][0].dispositions == ["merged_duplicate"]
    # ...and the first call's area, seeing its ghost, publishes the merge
    [merged] = second[a][0].updates
    assert (merged["subject_id"], merged["kind"], merged["state"]["calls"]) == ("cad:MPD:1", "merged", 2)
    assert areas[b].incidents["cad:MPD:2"]["merged_into"] == "cad:MPD:1"


def test_a_report_across_the_border_is_linked_by_the_incidents_area():
    a_point, b_point = _straddle()
    areas = {_area(a_point): Correlator({}, {}), _area(b_point): Correlator({}, {})}
    _deliver(areas, event(subject="1", minutes=0, point=a_point))
    report = _deliver(areas, event("community", subject="r1", minutes=5, point=b_point,
                                   category="violent"))
    a, b = _area(a_point), _area(b_point)
    assert report[b][0].dispositions == ["linked_remote"] and not report[b][0].updates
    [linked] = report[a][0].updates
    assert linked["subject_id"] == "cad:MPD:1" and linked["state"]["linked_reports"] == 1


def test_ghosts_expire_without_publishing():
    a_point, b_point = _straddle()
    b = Correlator({}, {})
    b.apply(dict(event(subject="1", minutes=0, point=a_point), ghost=True))
    closed = b.advance(10 * 24 * 3600 + 1.6e9)
    assert closed.updates == [] and closed.tombstones == [] and b.incidents == {}
