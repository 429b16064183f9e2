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
"""

from __future__ import annotations

import asyncio

from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery

FETCH_TIMEOUT_S = 1.0  # faust.transport.consumer.Consumer._drain_messages: getmany(timeout=1.0)


class SeekFirstRecovery(Recovery):
    """Faust's recovery, with the consumer's flow stopped before its resume-and-seek."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.app.consumer.stop_flow()
        await asyncio.sleep(FETCH_TIMEOUT_S + 0.2)
        await super().on_recovery_completed(generation_id)


class SeekFirstTableManager(TableManager):
    """Faust's table manager, with the recovery above (the App's `TableManager` setting)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon,
                                               loop=self.loop)
        return self._recovery
