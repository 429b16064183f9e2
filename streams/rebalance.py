"""After a rebalance, streams start from the committed offsets and from nothing fetched before.

Faust's recovery, when no changelog needs reading, resumes the consumer's flow ("Resuming
flow...") well before it seeks the stream partitions back to their committed offsets
(`Recovery.on_recovery_completed`: resume the partitions, then seek). Between the two the
fetcher reads the resumed partitions from wherever aiokafka stood, and a fetch made before
the seek can be drained after it: Faust then takes the committed offset as the last one
read, records the offsets in between as a gap that may be committed past, and drops the
re-fetched messages below the stale ones as already read. The chaos scenario scale
1 -> 2 -> 1 lost one audience update while the SA topic held it; a trace of the publish
agent's batches then showed messages handled in that window, and a batch with an offset
missing (bench/README.md, Reliability). faust-streaming fixed the same order for apps
without tables (its issue 216); this path keeps it.

Here the flow is stopped before the partitions are resumed and sought, for longer than a
fetch can take (Faust's fetch loop waits at most `FETCH_TIMEOUT_S` for records), so that
every fetch made before the seek has returned, found the flow stopped and been dropped;
Faust's own resume after the seek then fetches from the committed offsets.

A partition with no committed offset (nothing of it ever committed: a new group, a source
partition that has been quiet since the deployment began) is not sought by that seek
(aiokafka seeks only to a committed offset above 0), so the records dropped from it stayed
read, and lost: two workers started as a feed began lost the first ~50 records of each
partition that moved to the second one, in 6 of 9 runs (bench/NOTES.md, section 28). Such a
partition is sought to its earliest offset here, which is what the consumer's
`auto_offset_reset` of "earliest" (streams/app.py) means for it.
"""

from __future__ import annotations

import asyncio

from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.types import TP

FETCH_TIMEOUT_S = 1.0  # faust.transport.consumer.Consumer._drain_messages: getmany(timeout=1.0)


class SeekFirstRecovery(Recovery):
    """Faust's recovery, with the consumer's flow stopped before its resume-and-seek."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.app.consumer.stop_flow()
        self.log.info("Flow stopped for the seek to committed offsets")
        await asyncio.sleep(FETCH_TIMEOUT_S + 0.2)
        await self.rewind_uncommitted()
        await super().on_recovery_completed(generation_id)

    async def rewind_uncommitted(self) -> dict[TP, int]:
        """Seek the stream partitions that have no committed offset (or 0) to their earliest
        offset, with the flow stopped: the records fetched and dropped are read again."""
        consumer = self.app.consumer
        if self.app.conf.consumer_auto_offset_reset != "earliest":
            return {}  # "latest": a partition never committed starts wherever it stands
        streams = {tp for tp in consumer.assignment() if not self._is_changelog_tp(tp)}
        if not streams:
            return {}
        committed = await consumer.seek_to_committed()
        fresh = [TP(tp.topic, tp.partition) for tp, offset in committed.items()
                 if TP(tp.topic, tp.partition) in streams and not offset]
        if not fresh:
            return {}
        earliest = await consumer.earliest_offsets(*fresh)
        starts = {tp: earliest.get(tp, 0) for tp in fresh}
        await consumer.seek_wait(starts)
        self.log.info("Sought %d stream partitions without a committed offset to their "
                      "earliest offsets", len(starts))
        return starts


class SeekFirstTableManager(TableManager):
    """Faust's table manager, with the recovery above (the App's `TableManager` setting)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon,
                                               loop=self.loop)
        return self._recovery
