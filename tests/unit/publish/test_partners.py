"""Partner keys, subscription scope and the per-subject rate limit (pure)."""

from __future__ import annotations

from agents.publish.partners import (
    Coalescer, Scope, key_hash, key_matches, new_key, partner_id_of, point_in_polygon,
)


def test_keys_name_their_partner_and_match_only_their_hash():
    key = new_key("mke-crisis")
    assert partner_id_of(key) == "mke-crisis"
    assert key_matches(key, key_hash(key))
    assert not key_matches(key + "x", key_hash(key))
    assert not key_matches(new_key("mke-crisis"), key_hash(key))
    assert key_hash(key).startswith("sha256:") and key not in key_hash(key)
    for bad in ("", "rtcc..x", "nope.mke.x", "rtcc.mke", "Bearer x"):
        assert partner_id_of(bad) is None


SQUARE = [[-88.0, 43.0], [-87.9, 43.0], [-87.9, 43.1], [-88.0, 43.1], [-88.0, 43.0]]


def test_point_in_polygon():
    assert point_in_polygon(-87.95, 43.05, SQUARE)
    assert not point_in_polygon(-87.85, 43.05, SQUARE)
    assert not point_in_polygon(-87.95, 43.15, SQUARE)


def test_scope_filters_by_place_category_and_priority():
    scope = Scope.of({"bbox": [-88.0, 43.0, -87.9, 43.1], "categories": ["violent"],
                      "max_priority": 2})
    inside = {"latitude": 43.05, "longitude": -87.95, "category": "violent", "priority": 1}
    assert scope.admits(inside)
    assert not scope.admits({**inside, "latitude": 43.2})
    assert not scope.admits({**inside, "category": "traffic"})
    assert not scope.admits({**inside, "priority": 3})
    assert scope.admits({**inside, "priority": None})  # hotspots and clusters have none
    # a subject that cannot be placed is outside a spatial scope, never inside by default
    assert not scope.admits({"category": "violent", "priority": 1})
    assert not scope.admits(None)


def test_scope_districts_and_polygon_are_alternatives():
    scope = Scope.of({"districts": ["5"], "polygon": SQUARE})
    assert scope.admits({"district": "5"})
    assert scope.admits({"district": "7", "latitude": 43.05, "longitude": -87.95})
    assert not scope.admits({"district": "7", "latitude": 43.5, "longitude": -87.95})
    assert Scope.of({}).admits({"district": "anything"})


def test_coalescer_holds_the_newest_and_releases_it_after_the_interval():
    c = Coalescer(min_interval_s=10)
    assert c.offer("a", ("a1",), now=0) == [("a1",)]
    assert c.offer("b", ("b1",), now=1) == [("b1",)]  # other subjects are not held back
    assert c.offer("a", ("a2",), now=2) == []
    assert c.offer("a", ("a3",), now=5) == []  # replaces a2
    assert c.superseded == 1
    assert c.next_due() == 10
    assert c.due(now=9) == []
    assert c.due(now=10) == [("a3",)]
    assert c.offer("a", ("a4",), now=15) == []  # 5 s after the last delivery
    assert c.due(now=20) == [("a4",)]
    assert c.held == {}


def test_coalescer_without_interval_passes_everything():
    c = Coalescer(min_interval_s=0)
    assert [c.offer("a", (i,), now=0) for i in range(3)] == [[(0,)], [(1,)], [(2,)]]
