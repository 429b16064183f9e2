"""A second worker joins while the feed begins: every source record is read, though no
offset of its partitions was committed yet (streams/rebalance.py).

After a rebalance Faust's recovery resumes the consumer's flow before it seeks the stream
partitions to their committed offsets, and what is fetched in between is dropped. A
partition with a committed offset is sought back to it; one without was left where the
dropped records had moved it, and two workers started as a feed began lost the first ~50
records of such partitions (bench/NOTES.md, section 28). The records here are sent while
the group rebalances, so that they wait, unread and uncommitted, for their partitions'
owners to recover.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import orjson
from kafka import KafkaProducer

from streams.processes import free_port, start_worker, stop
from tests.integration.conftest import drain, running_worker, wait_for
from tests.samples import MKE_CALL

PER_PARTITION = 40
# aiokafka's log line when a member gives up its partitions for a rebalance.
REVOKING = "Revoking previously assigned partitions frozenset("


def _logged(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text()


def _source_ids(normalised: list[dict]) -> set[str]:
    """Source event ids of normalised events ('cad:<agency>:<id>')."""
    return {doc["event_id"].rsplit(":", 1)[-1] for doc in normalised}


def test_a_joining_worker_loses_no_record_of_partitions_never_committed(topics, tmp_path):
    # RocksDB, as deployed: with the in-memory store a worker reads its kept partitions'
    # changelogs again at every rebalance (bench/NOTES.md, section 28).
    settings = dataclasses.replace(topics, table_store="rocksdb://")
    source = settings.topic("cad.events")
    with running_worker(dataclasses.replace(settings, data_dir=tmp_path / "a"),
                        tmp_path / "a.log") as first:
        assert wait_for(lambda: _logged(first.log, "Worker ready"), timeout_s=60)
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=0)
        producer.partitions_for(source)  # metadata now, not in the window
        second_log = tmp_path / "b.log"
        second = start_worker(dataclasses.replace(settings, data_dir=tmp_path / "b",
                                                  web_port=free_port()), second_log)
        try:
            # The first worker gives its partitions up when the second one joins: what is
            # sent now is read by the owners of the next generation, after their recovery.
            assert wait_for(lambda: _logged(first.log, REVOKING), timeout_s=90, every_s=0.02), \
                first.log.read_text()[-3000:]
            expected: set[str] = set()
            for i in range(PER_PARTITION):
                for p in range(settings.topic_partitions):
                    event_id = f"join-{p}-{i}"
                    producer.send(source, orjson.dumps({**MKE_CALL, "event_id": event_id}),
                                  key=event_id.encode(), partition=p)
                    expected.add(event_id)
            producer.flush()
            producer.close()
            normalised = drain(settings, settings.topic("rtcc.events.normalised"),
                               until=lambda read: expected <= _source_ids(read), timeout_s=45)
            missing = expected - _source_ids(normalised)
            assert not missing, f"{len(missing)} of {len(expected)} never read: {sorted(missing)}"
        finally:
            stop(second)
        text = second_log.read_text()
        assert "Traceback" not in text, text[-3000:]


def _marks_by_partition(settings, topic: str) -> dict[int, list[dict]]:
    from tests.integration.conftest import reading_from_start

    marks: dict[int, list[dict]] = {}
    with reading_from_start(settings, topic) as (consumer, tps):
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    doc = orjson.loads(r.value) if r.value is not None else None
                    if isinstance(doc, dict) and "mark" in doc:
                        marks.setdefault(tp.partition, []).append(doc)
    return marks


def test_a_stopping_worker_releases_its_source_partitions_to_their_next_owner(topics,
                                                                               tmp_path):
    # What it said of a quiet source must not outlive its reading it (bench/NOTES.md, 42):
    # its last word on each source partition, in every normalised partition, is "released".
    from streams.topics import NORMALISED, SOURCE_TOPICS, partitions_of

    origins = {f"{topics.topic(spec.name)}:{p}" for spec in SOURCE_TOPICS.values()
               for p in range(partitions_of(spec, topics))}
    with running_worker(topics, tmp_path / "w.log") as w:
        assert wait_for(lambda: _logged(w.log, "Worker ready"), timeout_s=60)
        time.sleep(1.0)  # a few timer marks: caught up, quiet
    assert _logged(w.log, "ingest: released"), w.log.read_text()[-3000:]
    marks = _marks_by_partition(topics, topics.topic("rtcc.events.normalised"))
    assert sorted(marks) == list(range(partitions_of(NORMALISED, topics)))
    for partition, docs in marks.items():
        last: dict[str, dict] = {}
        for doc in docs:
            for entry in doc["origins"]:
                last[entry["origin"]] = {**entry, "wall": doc["wall"]}
        assert set(last) == origins, partition
        assert any(e["caught_up"] for doc in docs for e in doc["origins"]), partition
        assert not any(e["caught_up"] for e in last.values()), (partition, last)
