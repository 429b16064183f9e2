"""The Faust application: one per worker process, configured from streams.config."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import faust

import schemas  # noqa: F401  (registers the orjson codec before any topic is built)
from streams import fetching
from streams.changelog import ChangelogOutbox, DeferredChangelogTable
from streams.config import Settings, load
from streams.rebalance import SeekFirstTableManager
from streams.security import faust_credentials
from streams.topics import TopicSpec, partitions_of


class App(faust.App):
    """Faust's App, writing the stages' checkpoints (agents/checkpoint.py) while it waits
    for the messages in flight to be acked.

    A rebalance and a shutdown both pause the streams and then wait until every message
    read has been acked (`_consumer_wait_empty`), including those an agent still has to
    handle. A checkpoint holds its events' acks until it writes their state, and on
    shutdown its timer has already stopped: without this the wait never ended and a
    SIGTERM became a kill after the stop timeout.

    A worker about to give partitions up (a rebalance revokes them, or it stops) first
    runs `on_hand_over` with them (None: all it has), before Faust stops its fetching and
    waits for the messages in flight: ingest says there that it no longer reads them, and
    the sooner it does, the less of a quiet partition goes unwatched (bench/NOTES.md, 42).
    """

    checkpoint_every_s = 0.2  # while waiting for acks

    def __init__(self, *args: Any, fetch_max_wait_s: float = 1.5, fetch_min_bytes: int = 1,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_wait_empty: list[Callable[[], Awaitable[object]]] = []
        self.on_hand_over: list[Callable[[set[Any] | None], Awaitable[object]]] = []
        self.changelog = ChangelogOutbox(self)  # sent by each checkpoint (streams/changelog.py)
        self.fetch_max_wait_s = fetch_max_wait_s  # streams/fetching.py
        self.fetch_min_bytes = fetch_min_bytes

    def _new_transport(self) -> fetching.Transport:
        """The Kafka transport whose fetches wait at most `fetch_max_wait_s` for
        `fetch_min_bytes` (every broker URL here is kafka://)."""
        return fetching.Transport(self.conf.broker_consumer, self)

    async def _hand_over(self, partitions: set[Any] | None) -> None:
        for hand_over in self.on_hand_over:
            await hand_over(partitions)

    async def _on_partitions_revoked(self, revoked: set[Any]) -> None:
        if not self.should_stop:
            await self._hand_over(set(revoked))
        await super()._on_partitions_revoked(revoked)

    async def on_stop(self) -> None:
        await self._hand_over(None)
        await super().on_stop()

    async def _write_checkpoints(self) -> None:
        for write_checkpoint in self.before_wait_empty:
            await write_checkpoint()

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        async def keep_writing() -> None:  # the batches handled during the wait
            while True:
                await asyncio.sleep(self.checkpoint_every_s)
                await self._write_checkpoints()

        await self._write_checkpoints()
        writer = asyncio.ensure_future(keep_writing())
        try:
            await super()._consumer_wait_empty(consumer, logger)
        finally:
            writer.cancel()


def create_app(settings: Settings) -> App:
    return App(
        settings.app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap.split(",")],
        # TLS and/or SASL from RTCC_KAFKA_SECURITY_PROTOCOL etc.; None for PLAINTEXT.
        broker_credentials=faust_credentials(settings),
        store=settings.table_store,
        datadir=str(settings.data_dir),
        processing_guarantee=settings.processing_guarantee,
        web_host=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        # A new consumer group starts at the oldest retained event: nothing is skipped.
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.broker_session_timeout_s,
        producer_acks=-1,
        # Batch produce requests (bench/NOTES.md): with Faust's default linger of 0 every
        # few messages were a request of their own, and socket writes took a fifth of the CPU.
        producer_linger=settings.producer_linger_s,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        key_serializer="raw",
        value_serializer="orjson",
        autodiscover=False,
        # Streams resume from the committed offsets only (streams/rebalance.py).
        TableManager=SeekFirstTableManager,
        # Changelog records leave with the checkpoint that wrote them (streams/changelog.py).
        Table=DeferredChangelogTable,
        fetch_max_wait_s=settings.fetch_max_wait_s,
        fetch_min_bytes=settings.fetch_min_bytes,
    )


settings = load()
app = create_app(settings)


def state_table(name: str, partitions: int) -> faust.Table:
    """A table of per-partition state, with RocksDB sized for this worker (streams.config).

    Values go to the changelog and the store through orjson, like every topic here, not
    Faust's default stdlib-json codec (a few per cent of the worker's CPU, bench/NOTES.md).
    Both write plain JSON, so state written by either reads back the same. Keys keep
    Faust's codec: its bytes name the record in the compacted changelog.
    """
    table = app.Table(name, default=None, partitions=partitions,
                      options=rocksdb_options(settings))
    # Faust derives it from value_type (json without one); read when the store is built.
    table.value_serializer = "orjson"
    return table


def rocksdb_options(settings: Settings) -> dict[str, int] | None:
    """Faust's RocksDBOptions for the deployment's store; None leaves other stores alone.

    A fresh dict per table: Faust's RocksDB store pops keys from the dict it is given.
    """
    if not settings.table_store.startswith("rocksdb"):
        return None
    return {
        "write_buffer_size": settings.rocksdb_write_buffer_bytes,
        "max_write_buffer_number": settings.rocksdb_max_write_buffers,
        "block_cache_size": settings.rocksdb_block_cache_bytes,
    }


def topic(spec: TopicSpec, **options: object) -> faust.TopicT:
    """The Faust topic of a spec, with the deployment's prefix and partitions."""
    return app.topic(
        settings.topic(spec.name),
        partitions=partitions_of(spec, settings),
        retention=spec.retention_ms / 1000,
        compacting=spec.cleanup_policy == "compact",
        **options,
    )
