"""A correlation partition moving between workers decides as if it had stayed put.

Driven through the agent's own functions (`handle`, the checkpoint's flush, the
revocation handler) on Faust's in-memory tables. The case is the one the chaos scenario
scale 1 -> 2 -> 1 caught: two calls about one event, from two source partitions, with
the rebalance between them and the earlier call's source partition moving to the new
worker, whose ingest takes a while to start.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from faust.types import TP

from tests.unit.agent_state import checkpoint_flush  # first: the agents' tables in memory

from tests.unit.correlate import factories as f  # noqa: E402

PARTITION = 7  # of the normalised topic; no other test in this process uses it


def _mark(origin: str, max_ts: float | None, wall: float, caught_up: bool,
          last_event_wall: float | None) -> dict[str, Any]:
    return {"mark": True, "origin": origin, "max_ts": max_ts, "wall": wall,
            "last_event_wall": last_event_wall, "caught_up": caught_up,
            "caught_up_wall": wall if caught_up else None}


def _from(origin: str) -> dict[str, Any]:
    topic, partition = origin.rsplit(":", 1)
    return {"source_topic": topic, "source_partition": int(partition)}


def test_a_duplicate_call_stays_merged_into_the_earlier_one_across_a_rebalance():
    from agents.batching import Outbox
    from agents.correlate import agents as correlate
    from streams import channels
    from streams.app import app, settings
    from streams.topics import SOURCE_TOPICS

    out = Outbox(app)
    cad_topic = settings.topic(SOURCE_TOPICS["cad"].name)
    cad = [o for o in correlate.EXPECTED_ORIGINS if o.startswith(f"{cad_topic}:")]
    moving, staying = cad[:2]  # two CAD source partitions
    quiet = [o for o in correlate.EXPECTED_ORIGINS if o not in (moving, staying)]
    t0, wall = f.BASE.timestamp(), time.time()

    def tick(wall: float, marks: list[dict[str, Any]]) -> None:
        for origin in quiet:  # no feed on the other topics: caught up and silent
            marks.append(_mark(origin, None, wall, True, None))
        for mark in marks:
            correlate.handle(PARTITION, mark, out)

    # Both CAD partitions busy, up to the minute before the event.
    for w in (wall - 20, wall - 10):
        tick(w, [_mark(moving, t0 - 60, w, False, w), _mark(staying, t0 - 60, w, False, w)])
    checkpoint_flush(correlate.detach_partition, PARTITION)
    revoked = {TP(channels.normalised.get_topic_name(), PARTITION)}
    asyncio.run(correlate.forget_revoked(app, revoked))

    # This worker keeps `staying`: the second call about the event, and time goes on.
    second = f.event(subject="2", minutes=1, **_from(staying))
    correlate.handle(PARTITION, second, out)
    for w in (wall, wall + 3, wall + 6, wall + 9):  # longer than RTCC_IDLE_S
        tick(w, [_mark(staying, t0 + 3600, w, False, w)])
    # `moving` speaks again from its new owner: the first call, then how far it has got.
    first = f.event(subject="1", minutes=0, **_from(moving))
    correlate.handle(PARTITION, first, out)
    tick(wall + 10, [_mark(moving, t0 + 3600, wall + 10, True, wall + 10),
                     _mark(staying, t0 + 3600, wall + 10, True, wall + 10)])

    incidents = correlate.state_of(PARTITION).engine.incidents
    assert incidents["cad:MPD:2"]["merged_into"] == "cad:MPD:1"  # the earlier call: primary
    assert incidents["cad:MPD:1"]["merged_into"] is None
    assert incidents["cad:MPD:1"]["calls"] == ["cad:MPD:2"]


def _quiet_pause_then_handover(partition: int, hand_over) -> dict[str, Any]:
    """Both CAD partitions caught up and quiet for longer than RTCC_IDLE_S (a pause in the
    feed), then the feed resumes as `moving` changes owner: the second call about the
    event, and more of `staying`, reach the partition before the first call, which waits
    for the new owner. `hand_over(tick, wall)` is what the old owner does before it goes.
    Returns the partition's incidents."""
    from agents.batching import Outbox
    from agents.correlate import agents as correlate
    from streams.app import settings
    from streams.topics import SOURCE_TOPICS

    out = Outbox(app_())
    cad_topic = settings.topic(SOURCE_TOPICS["cad"].name)
    cad = [o for o in correlate.EXPECTED_ORIGINS if o.startswith(f"{cad_topic}:")]
    moving, staying = cad[:2]
    quiet = [o for o in correlate.EXPECTED_ORIGINS if o not in (moving, staying)]
    t0, wall, idle = f.BASE.timestamp(), time.time(), settings.idle_s

    last_event = wall - idle - 1

    def tick(wall: float, marks: list[dict[str, Any]]) -> None:
        for origin in quiet:
            marks.append(_mark(origin, None, wall, True, last_event))
        for mark in marks:
            correlate.handle(partition, mark, out)

    tick(wall, [_mark(moving, t0 - 60, wall, True, last_event),
                _mark(staying, t0 - 60, wall, True, last_event)])
    assert correlate.state_of(partition).watermarks.current() == float("inf")
    wall = hand_over(tick, out, wall, moving, staying)
    # `staying` reads on: the second call, then far later times, with its marks
    correlate.handle(partition, f.event(subject="2", minutes=1, **_from(staying)), out)
    for w in (wall + 0.1, wall + 0.2, wall + 0.3):
        tick(w, [_mark(staying, t0 + 3600, w, False, w)])
    # `moving` from its new owner: the first call, then how far it has got
    correlate.handle(partition, f.event(subject="1", minutes=0, **_from(moving)), out)
    tick(wall + 1, [_mark(moving, t0 + 3600, wall + 1, True, wall + 1),
                    _mark(staying, t0 + 3600, wall + 1, True, wall + 1)])
    return correlate.state_of(partition).engine.incidents


def app_():
    from streams.app import app

    return app


def test_a_quiet_source_partition_released_by_its_owner_holds_until_the_next_owner_reads():
    # The chaos scenario scale 1 -> 2 -> 1 again (2026-12-02): the second worker stopped
    # (SIGTERM) in a pause of the feed, having reported its source partition caught up and
    # quiet; the first worker's calls overtook the first call, read after the rebalance.
    from agents.correlate import agents as correlate
    from agents.ingest.progress import released

    def release(tick, out, wall: float, moving: str, staying: str) -> float:
        correlate.handle(8, released([moving], wall + 0.1), out)
        # a mark the old owner took before it released, written after: no news
        correlate.handle(8, _mark(moving, None, wall + 0.05, True, wall - 10), out)
        return wall + 0.2

    incidents = _quiet_pause_then_handover(8, release)
    assert incidents["cad:MPD:2"]["merged_into"] == "cad:MPD:1"
    assert incidents["cad:MPD:1"]["calls"] == ["cad:MPD:2"]


def test_a_quiet_source_partition_of_a_killed_worker_holds_once_its_marks_stop():
    # kill -9: no release. The others' marks go on; after RTCC_IDLE_S without news of it,
    # its silence is no longer known, and it holds until its next owner reports.
    from streams.app import settings

    def killed(tick, out, wall: float, moving: str, staying: str) -> float:
        for w in (wall + 1, wall + settings.idle_s + 0.5):
            tick(w, [_mark(staying, f.BASE.timestamp() - 60, w, True, wall - 10)])
        return wall + settings.idle_s + 0.5

    incidents = _quiet_pause_then_handover(9, killed)
    assert incidents["cad:MPD:2"]["merged_into"] == "cad:MPD:1"
    assert incidents["cad:MPD:1"]["calls"] == ["cad:MPD:2"]
