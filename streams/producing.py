"""A batch of records into aiokafka's producer with a future per Kafka batch, not per record.

`AIOKafkaProducer.send()` is built for one record at a time: a chain of coroutines, the
partitioner, and an asyncio Future per record that the Kafka batch resolves, one by one,
when the broker acks it. Measured on this box against the local broker (bench/producer.py,
acks included): 11-13 us of CPU per record that way, ~4.5 us appended straight to the open
Kafka batch. The
pipeline writes ~10 records per event (outputs and changelogs), always many at a time from
an agent's `Outbox`, and nothing waits on a single record: the agents need to know that a
record failed (counted) and, for a changelog, the offset of a partition's last record.

`append_all` therefore appends each record to its partition's open batch in aiokafka's
accumulator, exactly as `MessageAccumulator.add_message` would, and gives a future only to
the last record of each partition's run in a batch (registered the way
`MessageBatch.append` does, so that the batch resolves it with that record's offset or its
failure). A full batch, and a record no batch can take, go through aiokafka's own
`add_message`, which waits for the sender to drain; every run is given its future before
that wait, so no batch is sent with a record the caller cannot hear about. Order per
partition is the order given: records are appended in it, to the partition's newest batch.

This reaches into aiokafka's accumulator (`_batches`, `_append_batch`, a batch's
`_builder` and `_msg_futures`); `supported()` checks that they are there, and the agents
fall back to `send()` per record otherwise. tests/integration/test_producing.py checks the
records, their order, offsets and headers on a real broker.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerClosed
from aiokafka.structs import TopicPartition

# topic, key, value, partition (None: the producer's partitioner), headers
Record = tuple[str, bytes | None, bytes | None, int | None, list[tuple[str, bytes]] | None]
# topic, partition, future of the run's last record (its RecordMetadata), records in the run;
# the partition is None only from `send()` per record with the partitioner left to choose
Run = tuple[str, int | None, asyncio.Future, int]


def supported(producer: Any) -> bool:
    """Whether `producer` is an aiokafka producer whose accumulator this module knows, on
    the running event loop (an accumulator is safe to touch only from its own loop)."""
    accumulator = getattr(producer, "_message_accumulator", None)
    return (isinstance(producer, AIOKafkaProducer)
            and getattr(producer, "_loop", None) is asyncio.get_running_loop()
            and all(hasattr(producer, name) for name in ("_partitioner", "_request_timeout_ms"))
            and all(hasattr(accumulator, name) for name in (
                "_batches", "_append_batch", "_closed", "_exception", "create_builder",
                "add_message")))


def _check(accumulator: Any) -> None:
    """What `add_message` refuses before it appends: a closed or failed producer."""
    if accumulator._closed:
        raise ProducerClosed()
    if accumulator._exception is not None:
        raise copy.copy(accumulator._exception)


class _Runs:
    """Each partition's records appended since its last future, and the batch they are in."""

    def __init__(self) -> None:
        self.open: dict[TopicPartition, tuple[Any, Any, int]] = {}  # batch, last metadata, n
        self.done: list[Run] = []

    def appended(self, tp: TopicPartition, batch: Any, metadata: Any) -> None:
        previous = self.open.get(tp)
        count = previous[2] + 1 if previous is not None and previous[0] is batch else 1
        if previous is not None and previous[0] is not batch:
            self._close(tp, *previous)
        self.open[tp] = (batch, metadata, count)

    def close_all(self) -> None:
        for tp, run in self.open.items():
            self._close(tp, *run)
        self.open.clear()

    def _close(self, tp: TopicPartition, batch: Any, metadata: Any, count: int) -> None:
        future = asyncio.get_running_loop().create_future()
        batch._msg_futures.append((future, metadata))  # as MessageBatch.append does
        self.done.append((tp.topic, tp.partition, future, count))


async def append_all(producer: AIOKafkaProducer, records: Sequence[Record]) -> list[Run]:
    """Hand `records` to the producer, in order; returns the runs, in order, each with the
    future of its last record."""
    accumulator = producer._message_accumulator
    timeout = producer._request_timeout_ms / 1000
    runs = _Runs()
    _check(accumulator)
    partitions: dict[str, tuple[set[int], list[int], list[int]]] = {}  # per topic, as `send`
    for topic, key, value, partition, headers in records:
        known = partitions.get(topic)
        if known is None:
            cluster = producer.client.cluster
            if cluster.partitions_for_topic(topic) is None:
                runs.close_all()  # waiting for the topic's metadata yields to the sender
                await producer.client._wait_on_metadata(topic)
                _check(accumulator)
            ids = cluster.partitions_for_topic(topic)
            known = partitions[topic] = (
                ids, list(ids), list(cluster.available_partitions_for_topic(topic)))
        if partition is None:  # `AIOKafkaProducer._partition`, the topic's lists kept
            partition = producer._partitioner(key, known[1], known[2])
        elif partition not in known[0]:
            raise ValueError(f"{topic} has no partition {partition}")
        tp = TopicPartition(topic, partition)
        pending = accumulator._batches.get(tp)
        batch = pending[-1] if pending else accumulator._append_batch(
            accumulator.create_builder(), tp)
        metadata = batch._builder.append(timestamp=None, key=key, value=value,
                                         headers=headers or [])
        if metadata is not None:
            runs.appended(tp, batch, metadata)
            continue
        # The batch is full: aiokafka waits for the sender to drain it, then starts another.
        runs.close_all()
        future = await accumulator.add_message(tp, key, value, timeout, headers=headers or [])
        runs.done.append((topic, partition, future, 1))
        _check(accumulator)
    runs.close_all()
    return runs.done
