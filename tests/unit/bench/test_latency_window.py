"""bench.pipeline measures the latency of the events sent while the feed is live."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

from bench.pipeline import source_arrivals, update_latencies


def record(doc: dict, timestamp_ms: int, offset: int = 0) -> SimpleNamespace:
    return SimpleNamespace(value=orjson.dumps(doc), timestamp=timestamp_ms, partition=0,
                           offset=offset)


NORMALISED = [
    record({"event_id": "early", "source_timestamp_ms": 1_000}, 1_010),
    record({"event_id": "early", "source_timestamp_ms": 1_000, "ghost": True}, 1_010),
    record({"event_id": "last", "source_timestamp_ms": 5_000}, 5_010),
    record({"mark": "progress", "origin": "cad:0"}, 5_020),
]
ARRIVED = source_arrivals(NORMALISED)  # marks and ghosts are not arrivals
UPDATES = [
    record({"subject_kind": "incident", "source_event_ids": ["early"]}, 1_080, 0),
    record({"subject_kind": "incident", "source_event_ids": ["last"]}, 6_500, 1),
    record({"subject_kind": "hotspot", "source_event_ids": ["early"]}, 1_090, 2),
]


def test_updates_of_events_after_the_window_are_left_out():
    assert update_latencies(ARRIVED, UPDATES) == [0.08, 1.5]
    assert update_latencies(ARRIVED, UPDATES, until_ms=4_000) == [0.08]


def test_the_window_applies_to_visibility_too():
    visible_at = {(0, 0): 1.2, (0, 1): 7.0}
    assert update_latencies(ARRIVED, UPDATES, visible_at, until_ms=4_000) == \
        pytest.approx([0.2])
