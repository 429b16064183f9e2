"""What the correlation agent puts on the two SA topics: every update, in order, on the
append-only `rtcc.sa.updates` with its batch; on the compacted `rtcc.sa.state` (the live
picture a partner starts from) only each subject's last update or tombstone, with the
checkpoint that writes the partition's state."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.unit.agent_state import checkpoint_flush  # first: tables in memory

PARTITION = 3


def _update(subject: str, kind: str) -> dict[str, Any]:
    return {"subject_id": subject, "subject_kind": "incident", "kind": kind,
            "update_id": f"{subject}/{kind}"}


@pytest.fixture
def agent(monkeypatch):
    from agents.correlate import agents as correlate
    from streams.app import app

    monkeypatch.setattr(correlate, "partitions", {})  # none of other tests' partitions
    app.changelog.messages.messages.clear()
    yield correlate
    app.changelog.messages.messages.clear()


def _publish_two_batches(correlate) -> tuple[Any, Any]:
    from agents.batching import Outbox
    from agents.correlate.engine import Result
    from streams.app import app

    live = correlate.state_of(PARTITION).live
    out = Outbox(app)
    correlate.publish(Result(updates=[_update("cad:MPD:1", "opened"),
                                      _update("cad:MPD:2", "opened")]), out, live)
    correlate.publish(Result(updates=[_update("cad:MPD:1", "closed")],
                             tombstones=["cad:MPD:2"]), out, live)
    return out, live


def test_every_update_goes_with_its_batch_and_the_live_picture_waits(agent):
    from streams import channels

    out, _ = _publish_two_batches(agent)
    updates_topic = channels.sa_updates.get_topic_name()
    assert [(topic, key, orjson.loads(value)["kind"])
            for topic, key, value, _, _ in out.messages] == [
        (updates_topic, b"cad:MPD:1", "opened"),
        (updates_topic, b"cad:MPD:2", "opened"),
        (updates_topic, b"cad:MPD:1", "closed")]
    agent.send_live_with_batch(out)  # periodic checkpoints (the default): nothing added
    assert len(out.messages) == 3


def test_the_live_picture_leaves_with_the_checkpoint_after_the_tables_changelog(agent):
    from streams import channels
    from streams.app import app

    out, _ = _publish_two_batches(agent)
    closed = out.messages[2][2]  # the bytes of the closing update on rtcc.sa.updates
    checkpoint_flush(agent.detach_partition, PARTITION)

    state_topic = channels.sa_state.get_topic_name()
    sent = app.changelog.messages.messages
    topics = [topic for topic, *_ in sent]
    assert topics[-2:] == [state_topic, state_topic], topics
    assert topics[:-2] and all(t.endswith("-changelog") for t in topics[:-2])  # the views first
    assert [(key, value) for _, key, value, _, _ in sent[-2:]] == [
        (b"cad:MPD:1", closed),  # the same bytes as the update: serialised once
        (b"cad:MPD:2", None)]  # forgotten for good: a tombstone
    assert channels.sa_state.prepare_value(orjson.loads(closed), None)[0] == closed

    checkpoint_flush(agent.detach_partition, PARTITION)  # nothing since: nothing more
    assert [t for t, *_ in app.changelog.messages.messages].count(state_topic) == 2


def test_under_exactly_once_the_live_picture_goes_with_each_batch(agent, monkeypatch):
    from streams import channels

    monkeypatch.setattr(agent.checkpoint, "interval_s", 0.0)  # a checkpoint per batch
    out, live = _publish_two_batches(agent)
    agent.send_live_with_batch(out)
    state_topic = channels.sa_state.get_topic_name()
    assert [(key, value is None) for topic, key, value, _, _ in out.messages
            if topic == state_topic] == [(b"cad:MPD:1", False), (b"cad:MPD:2", True)]
    assert len(live) == 0
