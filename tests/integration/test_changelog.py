"""The tables' changelog topics hold exactly the state in the worker's RocksDB, and each
store records the offset of its partition's last changelog record (streams/changelog.py).

A worker that loses its disk rebuilds its tables from these topics and then reads them
from its persisted offset on: a record missing from the changelog, or one written to the
wrong partition, would come back as different state; a persisted offset behind the
changelog's end would be read again, one ahead would skip state.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from kafka import TopicPartition
from rocksdict import AccessType, Options, Rdict

from streams.replay import player
from streams.replay import profile as profiles
from streams.replay.plan import Pacing
from streams.topics import FINISHED_INCIDENTS, NORMALISED
from tests.integration.conftest import (group_commits, reading_from_start, running_worker,
                                        wait_for)

TABLES = ("correlate-incidents", "correlate-groups", "correlate-pending", "correlate-hotspots",
          "correlate-progress", "kpi-windows")
OFFSET_KEY = b"__faust\0offset__"  # where Faust's RocksDB store keeps the persisted offset


def _changelog(settings, table: str) -> dict[int, tuple[dict[bytes, bytes], int]]:
    """Per partition: the compacted content (last value per key, tombstones applied) and
    the offset of the last record."""
    topic = f"{settings.app_id}-{table}-changelog"
    with reading_from_start(settings, topic) as (consumer, tps):
        ends = consumer.end_offsets(tps)
        state: dict[int, dict[bytes, bytes]] = {tp.partition: {} for tp in tps}
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"{topic}: not read to its end"
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    if r.value is None:
                        state[tp.partition].pop(r.key, None)
                    else:
                        state[tp.partition][r.key] = r.value
        return {tp.partition: (state[tp.partition], ends[tp] - 1) for tp in tps}


def _stored(data_dir: Path, table: str, partition: int) -> tuple[dict[bytes, bytes], int | None]:
    """What the stopped worker's RocksDB holds for a table partition, and its offset."""
    paths = list(data_dir.rglob(f"*{table}-{partition}.db"))
    if not paths:
        return {}, None
    (path,) = paths
    db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
    try:
        items = {bytes(k): bytes(v) for k, v in db.items() if bytes(k) != OFFSET_KEY}
        offset = db.get(OFFSET_KEY)
        return items, None if offset is None else int(bytes(offset))
    finally:
        db.close()


def test_the_changelog_holds_the_stores_state_and_each_store_its_offset(topics, tmp_path):
    settings = dataclasses.replace(topics, table_store="rocksdb://")
    prof = profiles.load("milwaukee_pd_cfs")
    sent = player.replay(prof, prof.data_path(settings.shared_data_dir),
                         settings.topic(prof.source.topic.name), settings.kafka_bootstrap,
                         player.ReplayOptions(pacing=Pacing("max", 0.0), limit=800,
                                              progress=False)).events_sent
    with running_worker(settings, tmp_path / "worker.log") as worker:
        def settled() -> bool:
            normalised = worker.metric("rtcc_events_normalised_total")
            return (normalised + worker.metric("rtcc_events_dead_lettered_total") >= sent
                    and worker.metric("rtcc_correlation_events_total") >= normalised)

        assert wait_for(settled, timeout_s=180), worker.metrics()
        # idle: the last checkpoints are written once everything read is committed
        with group_commits(settings) as consumer:
            tps = [TopicPartition(settings.topic(spec.name), p)
                   for spec in (NORMALISED, FINISHED_INCIDENTS)
                   for p in range(settings.topic_partitions)]
            ends = consumer.end_offsets(tps)
            assert wait_for(lambda: all((consumer.committed(tp) or 0) >= ends[tp]
                                        for tp in tps), timeout_s=60)
        time.sleep(1.0)  # the last records' acknowledgements and their offsets
    # the worker has stopped: its RocksDB can be opened
    checked = 0
    for table in TABLES:
        for partition, (content, last_offset) in _changelog(settings, table).items():
            stored, persisted = _stored(settings.data_dir, table, partition)
            assert stored == content, f"{table}[{partition}]: store and changelog differ"
            if last_offset >= 0:
                assert persisted == last_offset, (table, partition, persisted, last_offset)
            checked += len(content)
    assert checked > 100  # open incidents, groups, hotspot windows, progress, KPI windows
