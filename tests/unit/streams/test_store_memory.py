"""RocksDB memory of the state tables: bounded by the worker's settings, visible on /metrics."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import faust

from streams.app import rocksdb_options
from streams.config import load
from streams.store_memory import table_store_bytes

MIB = 1024 * 1024


def fill(table: faust.Table, mib: int) -> None:
    """Unique keys straight into partition 0's database: what a long replay leaves in it."""
    db = table.data._db_for_partition(0)
    for i in range(mib * 2048):
        db.put(f"incident-{i}".encode(), os.urandom(500))


def test_settings_bound_the_memtables_that_faust_defaults_let_grow(tmp_path: Path):
    settings = dataclasses.replace(load(), table_store="rocksdb://",
                                   rocksdb_write_buffer_bytes=1 * MIB,
                                   rocksdb_max_write_buffers=2,
                                   rocksdb_block_cache_bytes=1 * MIB)
    app = faust.App("test-store-memory", store="rocksdb://", datadir=str(tmp_path),
                    autodiscover=False)
    bounded = app.Table("bounded", default=None, partitions=1,
                        options=rocksdb_options(settings))
    faust_default = app.Table("faust-default", default=None, partitions=1)
    fill(bounded, 12)
    fill(faust_default, 12)

    sizes = table_store_bytes([bounded, faust_default])
    # Faust's 64 MiB memtables keep all 12 MiB in memory; two of 1 MiB keep at most ~2 MiB.
    assert sizes[("faust-default", "memtables")] > 10 * MIB
    assert sizes[("bounded", "memtables")] <= 2.5 * MIB
    assert {kind for _, kind in sizes} == {"memtables", "block_cache", "table_readers"}


def test_other_stores_get_no_rocksdb_options_and_report_nothing(tmp_path: Path):
    settings = dataclasses.replace(load(), table_store="memory://")
    assert rocksdb_options(settings) is None
    app = faust.App("test-store-memory-mem", store="memory://", datadir=str(tmp_path),
                    autodiscover=False)
    table = app.Table("in-memory", default=None, partitions=1)
    table.data  # noqa: B018  (the store exists, as in a running worker)
    assert table_store_bytes([table]) == {}


def test_a_closed_database_does_not_fail_the_scrape(tmp_path: Path):
    """A rebalance may close a partition's database between the copy and the question."""
    app = faust.App("test-store-memory-closed", store="rocksdb://", datadir=str(tmp_path),
                    autodiscover=False)
    table = app.Table("closing", default=None, partitions=2)
    table.data._db_for_partition(0).put(b"incident", b"x" * 10_000)
    table.data._db_for_partition(1).close()

    sizes = table_store_bytes([table])
    assert sizes[("closing", "memtables")] >= 10_000
