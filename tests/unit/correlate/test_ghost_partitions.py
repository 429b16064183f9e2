"""Ghosts go only to partitions that do not already get the event, and that changes nothing
in the picture: one engine per partition of the normalised topic handles all of its areas.

Real Milwaukee calls plus New York 311 reports (report ghosts) are normalised, routed over 4
partitions as the ingest agent routes them, once with a ghost for every neighbouring area
and once with at most one per partition; each partition's engine applies its events in
the reorder buffer's order. The updates, dispositions and merges must be the same.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from agents.correlate.engine import Correlator
from agents.correlate.hotspots import HotspotTracker
from agents.correlate.ordering import event_ts
from agents.ingest.normalise import IngestPolicy, ghosts
from streams.config import load
from streams.offline import ingest_profile
from streams.topics import partition_for

PARTITIONS = 4


def _partition(area: str) -> int:
    return partition_for(area.encode(), PARTITIONS)


def _picture(events: list[Any], policy: IngestPolicy, pruned: bool) -> dict[str, Any]:
    by_partition: dict[int, list[dict[str, Any]]] = {p: [] for p in range(PARTITIONS)}
    copies = 0
    for event in events:
        by_partition[_partition(event.area_key)].append(orjson.loads(event.dumps()))
        for ghost in ghosts(event, policy, _partition if pruned else None):
            by_partition[_partition(ghost.area_key)].append(orjson.loads(ghost.dumps()))
            copies += 1
    updates, dispositions, merges = [], Counter(), 0
    for docs in by_partition.values():
        engine = Correlator({}, {}, None, on_finished=lambda _: None, hotspots=HotspotTracker({}))
        # the reorder buffer's release order: event time, event id, an event before its ghost
        for doc in sorted(docs, key=lambda d: (event_ts(d), d["event_id"], bool(d.get("ghost")))):
            for result in (engine.apply(doc), engine.advance(event_ts(doc))):
                updates += result.updates
                dispositions.update(result.dispositions)
                merges += result.merges
    return {"updates": sorted(orjson.dumps(u, option=orjson.OPT_SORT_KEYS) for u in updates),
            "dispositions": dispositions, "merges": merges, "ghosts": copies}


@pytest.fixture(scope="module")
def policy() -> IngestPolicy:
    return IngestPolicy.from_settings(load())


def test_a_ghost_goes_only_to_partitions_the_event_does_not_reach(policy):
    events = ingest_profile("milwaukee_pd_cfs", 3000)[0]
    near_border = [e for e in events if len(ghosts(e, policy)) >= 2]
    assert near_border, "no event near two other areas in the sample"
    for event in events:
        sent = [_partition(g.area_key) for g in ghosts(event, policy, _partition)]
        assert _partition(event.area_key) not in sent
        assert len(sent) == len(set(sent))
        # every partition a ghost used to reach is still reached
        assert {_partition(g.area_key) for g in ghosts(event, policy)} <= \
            set(sent) | {_partition(event.area_key)}


def test_pruned_ghosts_leave_the_picture_unchanged(policy):
    events = (ingest_profile("milwaukee_pd_cfs", 3000)[0]
              + ingest_profile("nyc_311", 1500)[0])
    every = _picture(events, policy, pruned=False)
    pruned = _picture(events, policy, pruned=True)
    assert pruned["ghosts"] < every["ghosts"]  # fewer messages...
    assert every["updates"] and every["merges"] > 0
    assert pruned["updates"] == every["updates"]  # ...the same picture
    assert pruned["dispositions"] == every["dispositions"]
    assert pruned["merges"] == every["merges"]
