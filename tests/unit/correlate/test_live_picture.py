"""agents/correlate/live_picture.py: each subject's latest record, held until a checkpoint."""

from __future__ import annotations

import pytest

from agents.correlate.live_picture import LivePicture


class _Outbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bytes | None]] = []

    def add_serialised(self, topic, key, value, partition=None):
        self.messages.append((topic, key, value))


def test_only_each_subjects_latest_record_is_written():
    target = _Outbox()
    live = LivePicture("sa.state", target)
    live.show(b"inc-1", b"opened")
    live.show(b"inc-2", b"opened")
    live.show(b"inc-1", b"closed")
    live.forget(b"inc-2")  # forgotten: a tombstone replaces its update
    assert len(live) == 2

    assert live.detach().write_detached() == 0
    assert target.messages == [("sa.state", b"inc-1", b"closed"), ("sa.state", b"inc-2", None)]


def test_records_after_a_detach_wait_for_the_next_checkpoint():
    target = _Outbox()
    live = LivePicture("sa.state", target)
    live.show(b"inc-1", b"opened")
    detached = live.detach()
    live.show(b"inc-1", b"closed")  # while the checkpoint is being written
    detached.write_detached()
    assert target.messages == [("sa.state", b"inc-1", b"opened")]

    live.detach().write_detached()
    assert target.messages[1:] == [("sa.state", b"inc-1", b"closed")]
    live.detach().write_detached()  # nothing new: nothing written
    assert len(target.messages) == 2


def test_a_second_detach_before_the_first_is_written_is_refused():
    live = LivePicture("sa.state", _Outbox())
    live.show(b"inc-1", b"opened")
    live.detach()
    live.show(b"inc-1", b"closed")
    with pytest.raises(RuntimeError):
        live.detach()


def test_drained_to_a_batch_outbox_when_every_batch_is_a_checkpoint():
    checkpoint_target, batch = _Outbox(), _Outbox()
    live = LivePicture("sa.state", checkpoint_target)
    live.show(b"inc-1", b"opened")
    live.forget(b"inc-0")
    live.drain_to(batch)
    assert batch.messages == [("sa.state", b"inc-1", b"opened"), ("sa.state", b"inc-0", None)]
    live.detach().write_detached()
    assert checkpoint_target.messages == []  # sent once, with the batch
