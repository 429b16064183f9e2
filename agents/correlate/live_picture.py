"""The compacted live picture (`rtcc.sa.state`) of one partition: a batch's last record per subject.

`rtcc.sa.state` keeps each subject's latest SA update, or forgets it (a tombstone), so a
partner starts from it instead of replaying every update. Compaction keeps only a key's
last record, so the records of a subject before its last one in a batch would be written
only to be compacted away (a hotspot's close and its tombstone come together). They go to
the producer with the batch, after its updates. Holding them until the checkpoint instead
wrote ~10 % fewer records on a backlog, but lengthened the tail at live rates (p95 +40 ms
at 750 events/s, in ingest's part: bench/NOTES.md section 36).

Values are the bytes already serialised for `rtcc.sa.updates` (both topics: raw keys,
orjson values; streams/channels.py), so an update is serialised once.
"""

from __future__ import annotations

from agents.batching import Outbox


class LivePicture:
    """One partition's latest `rtcc.sa.state` record per subject since the last drain."""

    __slots__ = ("topic", "pending")

    def __init__(self, topic: str) -> None:
        self.topic = topic  # the compacted topic's name
        self.pending: dict[bytes, bytes | None] = {}

    def show(self, subject: bytes, value: bytes) -> None:
        """The subject's latest update (serialised), replacing any earlier one not yet sent."""
        self.pending[subject] = value

    def forget(self, subject: bytes) -> None:
        """A tombstone (a record with no value): compaction then drops the subject."""
        self.pending[subject] = None

    def __len__(self) -> int:
        return len(self.pending)

    def drain_to(self, out: Outbox) -> None:
        """Every record so far to a batch's outbox, each subject where it first came."""
        for subject, value in self.pending.items():
            out.add_serialised(self.topic, subject, value)
        self.pending = {}
