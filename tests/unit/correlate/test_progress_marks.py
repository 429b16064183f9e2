"""Progress marks: one message per normalised partition carries every origin's mark, and
the correlation stage reads it and the older one-origin form alike (agents/ingest/progress.py)."""

from __future__ import annotations

import time

from tests.unit.agent_state import checkpoint_flush  # noqa: F401  (first: tables in memory)

from agents.ingest.progress import SourceProgress, combined, is_mark, origin_marks  # noqa: E402
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
         "caught_up_wall": None, "wall": 2.0},
        {"origin": "cad:1", "max_ts": None, "last_event_wall": 0.0, "caught_up": True,
         "caught_up_wall": None, "wall": 2.0}]
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
