"""agents/correlate/live_picture.py: each subject's latest record of a batch."""

from __future__ import annotations

from agents.correlate.live_picture import LivePicture


class _Outbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bytes | None]] = []

    def add_serialised(self, topic, key, value, partition=None):
        self.messages.append((topic, key, value))


def test_only_each_subjects_latest_record_is_sent():
    out = _Outbox()
    live = LivePicture("sa.state")
    live.show(b"inc-1", b"opened")
    live.show(b"inc-2", b"opened")
    live.show(b"inc-1", b"closed")
    live.forget(b"inc-2")  # forgotten: a tombstone replaces its update
    assert len(live) == 2

    live.drain_to(out)
    assert out.messages == [("sa.state", b"inc-1", b"closed"), ("sa.state", b"inc-2", None)]
    assert len(live) == 0


def test_the_next_batch_starts_afresh():
    out = _Outbox()
    live = LivePicture("sa.state")
    live.show(b"inc-1", b"opened")
    live.drain_to(out)
    live.drain_to(out)  # nothing new: nothing sent
    live.show(b"inc-1", b"reopened")
    live.drain_to(out)
    assert out.messages == [("sa.state", b"inc-1", b"opened"), ("sa.state", b"inc-1", b"reopened")]
