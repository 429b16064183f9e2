"""What the worker's RocksDB databases hold in memory, asked of RocksDB itself.

RSS alone cannot tell a leak from RocksDB filling its memtables and caches; these figures
can (bench/NOTES.md, section 8).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from streams import metrics

log = logging.getLogger(__name__)

# RocksDB's own properties, summed over a table's partitions.
PROPERTIES = {
    "memtables": "rocksdb.cur-size-all-mem-tables",
    "block_cache": "rocksdb.block-cache-usage",
    "table_readers": "rocksdb.estimate-table-readers-mem",
}


def databases(table: Any) -> list[Any]:
    """The open RocksDB databases of a Faust table: none for another store.

    Faust keeps them in its RocksDB store's private `_dbs` (partition -> db); a copy, since
    a rebalance may open or close one while the caller iterates.
    """
    store = getattr(table, "_data", None)
    return list((getattr(store, "_dbs", None) or {}).values())


def property_bytes(db: Any, name: str) -> int:
    """One integer property of a rocksdict database (the driver pyproject.toml installs)."""
    return int(db.property_int_value(name) or 0)


def table_store_bytes(tables: Iterable[Any]) -> dict[tuple[str, str], int]:
    """(table name, kind) -> bytes, for every table whose store is RocksDB.

    A database that cannot answer (closed by a rebalance in the meantime) is left out:
    the scrape that asks must not fail with it.
    """
    sizes: dict[tuple[str, str], int] = {}
    for table in tables:
        dbs = databases(table)
        if not dbs:
            continue
        for kind, name in PROPERTIES.items():
            total = 0
            for db in dbs:
                try:
                    total += property_bytes(db, name)
                except Exception as exc:  # noqa: BLE001
                    log.debug("store_memory: %s of %s: %r", name, table.name, exc)
            sizes[(table.name, kind)] = total
    return sizes


def measure(tables: Iterable[Any]) -> None:
    """Set rtcc_table_store_bytes; called at each scrape, so the figures are current."""
    for (table, kind), size in table_store_bytes(tables).items():
        metrics.TABLE_STORE_BYTES.labels(table, kind).set(size)
