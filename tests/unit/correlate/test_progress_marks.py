"""Progress marks: one message per normalised partition carries every origin's mark, and
the correlation stage reads it and the older one-origin form alike; an ingest batch's first
message to each partition carries the mark in a header (agents/ingest/progress.py)."""

from __future__ import annotations

import time

from tests.unit.agent_state import checkpoint_flush  # noqa: F401  (first: tables in memory)

from agents.ingest.progress import (MarkCarrier, SourceProgress, carried_mark,  # noqa: E402
                                    combined, is_mark, origin_marks)
from prometheus_client import REGISTRY  # noqa: E402
from tests.unit.correlate import factories as f  # noqa: E402


def test_one_mark_message_gives_back_each_origins_mark():
    progress = SourceProgress(started_wall=0.0)
    progress.observe("cad:0", 1000.0, 1.0, offset=41)
    message = progress.marks({"cad:0": 42, "cad:1": 0}, 2.0)
    assert is_mark(message)
    # every field the correlation stage reads, each origin's as of the message's wall
    assert [dict(m) for m in origin_marks(message)] == [
        {"origin": "cad:0", "max_ts": 1000.0, "last_event_wall": 1.0, "caught_up": True,
         "caught_up_wall": None, "read_wall": None, "wall": 2.0},
        {"origin": "cad:1", "max_ts": None, "last_event_wall": 0.0, "caught_up": True,
         "caught_up_wall": None, "read_wall": None, "wall": 2.0}]
    assert "wall" not in message["origins"][0]  # once per message, not per origin


def test_a_single_origins_mark_of_the_previous_version_still_reads():
    old = {"mark": "progress", "origin": "cad:0", "max_ts": 5.0, "wall": 9.0}
    assert origin_marks(old) == [old]


def buffered(partition: int) -> float:
    return REGISTRY.get_sample_value("rtcc_correlation_buffered_events",
                                     {"partition": str(partition)}) or 0.0


def test_one_combined_mark_moves_every_origin_and_releases_the_event():
    from agents.batching import Outbox
    from agents.correlate import agents as correlate
    from streams.app import app

    partition, out, now = 2, Outbox(app), time.time()
    correlate.handle(partition, f.event(subject="CM1", minutes=0), out)
    assert buffered(partition) >= 1
    later = f.BASE.timestamp() + 3600  # every source partition is an hour further on
    marks = [{"origin": origin, "max_ts": later, "last_event_wall": now, "caught_up": True}
             for origin in correlate.EXPECTED_ORIGINS]
    correlate.handle(partition, combined(marks[:-1], now), out)
    assert buffered(partition) >= 1  # one origin has not reported yet: still held
    correlate.handle(partition, combined(marks[-1:], now), out)
    assert buffered(partition) == 0


def _marks_at(wall: float, max_ts: float) -> dict:
    """One mark message: every origin the correlation stage expects caught up at `wall`."""
    from agents.correlate import agents as correlate

    return combined([{"origin": origin, "max_ts": max_ts, "last_event_wall": wall,
                      "caught_up": True, "caught_up_wall": wall}
                     for origin in correlate.EXPECTED_ORIGINS], wall)


def test_a_batch_carries_its_mark_once_to_each_partition_it_writes_to():
    from agents.batching import Outbox
    from agents.ingest import agents as ingest
    from streams import channels
    from streams.app import app, settings
    from tests.unit.source_messages import message, near_area_border

    mark = _marks_at(time.time(), 1000.0)
    carrier, out = MarkCarrier(mark), Outbox(app)
    for offset in range(3):  # near a border: each event and its ghosts, several partitions
        ingest.process("cad", message(settings.topic("cad.events"), near_area_border(),
                                      offset), out, [], carrier)
    normalised = [(partition, headers) for topic, _, _, partition, headers in out.messages
                  if topic == channels.normalised.get_topic_name()]
    partitions = [partition for partition, _ in normalised]
    assert len(set(partitions)) >= 2 and len(partitions) > len(set(partitions))
    first = {partition: headers for partition, headers in reversed(normalised)}
    assert all(carried_mark(headers) == mark for headers in first.values())
    assert sum(1 for _, headers in normalised if headers) == len(first)  # the first only


def test_carried_mark_reads_headers_as_kafka_gives_them_and_none_without():
    mark = combined([{"origin": "cad:0", "max_ts": 5.0}], 9.0)
    headers = MarkCarrier(mark).headers_for(0)
    assert carried_mark(headers) == mark
    assert carried_mark(tuple(headers)) == mark and carried_mark(dict(headers)) == mark
    assert carried_mark([("other", b"x")]) is None and carried_mark(None) is None


def test_a_carried_mark_releases_what_came_before_and_not_its_own_event():
    """The mark was taken before the event that carries it: it vouches for the sources as
    they were then. Observed after the event, it would pass the event's own source as
    caught up, and the event would be applied before that source's next events."""
    from datetime import datetime, timezone

    from agents.batching import Outbox
    from agents.correlate import agents as correlate
    from streams.app import app

    def live(event_id: str, seconds_ago: float, origin: str) -> dict:
        topic, partition = origin.rsplit(":", 1)
        at = datetime.fromtimestamp(now - seconds_ago, timezone.utc)
        return {**f.event(subject=event_id, event_id=event_id),
                "event_time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "source_topic": topic, "source_partition": int(partition)}

    partition, out, now = 9, Outbox(app), time.time()  # a partition no other test uses
    correlate.partitions.pop(partition, None)
    first, second = correlate.EXPECTED_ORIGINS[:2]
    correlate.handle(partition, live("held-first", 20.0, second), out)
    correlate.handle(partition, live("carrying", 10.0, first), out,
                     carried=_marks_at(now, now - 30.0))
    held = {item.event_id for item in correlate.state_of(partition).buffer.heap}
    assert "held-first" not in held  # released by the mark the next event carried
    assert "carrying" in held  # its own source is not known to be past it yet
