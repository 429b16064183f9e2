"""What a batch's SA updates put on the two SA topics: every update, in order, on the
append-only `rtcc.sa.updates`; on the compacted `rtcc.sa.state` (the live picture a partner
starts from) only each subject's last update or tombstone of the batch, with the very bytes
of the update (serialised once)."""

from __future__ import annotations

from typing import Any

import orjson

from tests.unit.agent_state import checkpoint_flush  # noqa: F401  first: tables in memory


def _update(subject: str, kind: str) -> dict[str, Any]:
    return {"subject_id": subject, "subject_kind": "incident", "kind": kind,
            "update_id": f"{subject}/{kind}"}


def test_the_live_picture_gets_each_subjects_last_update_of_a_batch():
    from agents.batching import Outbox
    from agents.correlate import agents as correlate
    from agents.correlate.engine import Result
    from streams import channels
    from streams.app import app

    out = Outbox(app)
    correlate.publish(Result(updates=[_update("cad:MPD:1", "opened"),
                                      _update("cad:MPD:2", "opened")]), out)
    correlate.publish(Result(updates=[_update("cad:MPD:1", "closed")],
                             tombstones=["cad:MPD:2"]), out)

    updates_topic = channels.sa_updates.get_topic_name()
    state_topic = channels.sa_state.get_topic_name()
    assert [(topic, key, orjson.loads(value)["kind"])
            for topic, key, value, _, _ in out.messages] == [
        (updates_topic, b"cad:MPD:1", "opened"),
        (updates_topic, b"cad:MPD:2", "opened"),
        (updates_topic, b"cad:MPD:1", "closed")]
    closed = out.messages[2][2]
    assert [(topic, key, value) for topic, key, value, _, _ in out.latest.values()] == [
        (state_topic, b"cad:MPD:1", closed),  # the update's own bytes
        (state_topic, b"cad:MPD:2", None)]  # forgotten for good: a tombstone
    assert list(out.latest.values())[0][2] is closed  # not serialised a second time
    # ... and they are what the compacted topic's own codec makes of the update.
    assert channels.sa_state.prepare_value(orjson.loads(closed), None)[0] == closed
