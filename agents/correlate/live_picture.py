"""The compacted live picture (`rtcc.sa.state`) of one partition, written with its state.

`rtcc.sa.state` keeps each subject's latest SA update, or forgets it (a tombstone), so a
partner starts from it instead of replaying every update. Compaction keeps only a key's
last record, so every record of a subject before its last one in a stretch of time is
written only to be compacted away. It was written per batch: on a live feed a batch holds
a handful of events, and the topic took ~2.9 records per event, more than the append-only
`rtcc.sa.updates` (~2.0), each a producer send and a compaction's work on the broker.

This holds each subject's latest record until the checkpoint that writes the partition's
state (agents/checkpoint.py; RTCC_CHECKPOINT_S), the way Kafka Streams' record cache holds
a KTable's updates until its commit: the records leave with the checkpoint's changelog,
after the updates of its events are in Kafka and before their acks. A crash before that
replays the events, which publish the same records again. The picture is then as fresh as
the last checkpoint (a second by default); the append-only topic, which the audiences and
the dashboard read, is unchanged. Under exactly_once every batch is a checkpoint, and the
records leave with the batch (`drain_to`).

Values are the bytes already serialised for `rtcc.sa.updates` (both topics: raw keys,
orjson values; streams/channels.py), so an update is serialised once.
"""

from __future__ import annotations

from agents.batching import Outbox


class LivePicture:
    """One partition's latest `rtcc.sa.state` record per subject, since the last detach."""

    __slots__ = ("topic", "pending", "detached", "target")

    def __init__(self, topic: str, target: Outbox | None) -> None:
        self.topic = topic  # the compacted topic's name
        self.target = target  # where a checkpoint's records go: the app's changelog outbox
        self.pending: dict[bytes, bytes | None] = {}
        self.detached: dict[bytes, bytes | None] = {}

    def show(self, subject: bytes, value: bytes) -> None:
        """The subject's latest update (serialised), replacing any earlier one not yet written."""
        self.pending[subject] = value

    def forget(self, subject: bytes) -> None:
        """A tombstone: compaction then drops the subject."""
        self.pending[subject] = None

    def __len__(self) -> int:
        return len(self.pending)

    def detach(self) -> "LivePicture":
        """Set the records so far aside for the checkpoint being taken (agents/checkpoint.py);
        records from now on wait for the next one."""
        if self.detached:
            raise RuntimeError("the last checkpoint of this live picture is still being written")
        self.detached, self.pending = self.pending, {}
        return self

    def write_detached(self, limit: int | None = None) -> int:
        """Hand the detached records to the target outbox, which the checkpoint sends after
        the views; all at once (serialised already, this is a list append each)."""
        for subject, value in self.detached.items():
            self.target.add_serialised(self.topic, subject, value)
        self.detached = {}
        return 0

    def drain_to(self, out: Outbox) -> None:
        """Every record so far, to a batch's own outbox (when every batch is a checkpoint)."""
        for subject, value in self.pending.items():
            out.add_serialised(self.topic, subject, value)
        self.pending = {}
