"""The partner registry: a compacted Kafka topic, written by `rtcc partners`, read whole.

The gateway follows the topic as a global table (every gateway process holds every partner,
so any process answers any request) and is ready only once it has read to the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as SyncTopicPartition

import streams.kafka_python_fix  # noqa: F401  (a refused login's answer is not lost)
from streams import security
from streams.config import Settings
from streams.topics import AUDIT, PARTNERS

log = logging.getLogger(__name__)


def now_iso(ms: bool = False) -> str:
    now = datetime.now(timezone.utc)
    if ms:
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the CLI side (kafka-python, synchronous) ---------------------------------------------

def _producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all",
                         **security.client_options(settings))


def write(settings: Settings, partner: dict[str, Any], audit: dict[str, Any]) -> None:
    """Write a partner record and its audit record; both acknowledged before returning."""
    producer = _producer(settings)
    try:
        producer.send(settings.topic(PARTNERS.name), key=partner["partner_id"].encode(),
                      value=orjson.dumps(partner)).get(timeout=30)
        producer.send(settings.topic(AUDIT.name), key=partner["partner_id"].encode(),
                      value=orjson.dumps(audit)).get(timeout=30)
    finally:
        producer.close()


def read_all(settings: Settings, timeout_s: float = 30.0) -> dict[str, dict[str, Any]]:
    """Every partner's latest record, read from the start to the end of the topic."""
    topic = settings.topic(PARTNERS.name)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                             group_id=None, enable_auto_commit=False,
                             **security.client_options(settings))
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise RuntimeError(f"topic {topic} not found: run `rtcc topics create`")
        tps = [SyncTopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        partners: dict[str, dict[str, Any]] = {}
        stop_at = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > stop_at:
                raise TimeoutError(f"could not read {topic} to its end in {timeout_s} s")
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    _apply(partners, r.key, r.value)
        return partners
    finally:
        consumer.close()


def _apply(partners: dict[str, dict[str, Any]], key: bytes | None, value: bytes | None) -> None:
    if key is None:
        return
    if value is None:
        partners.pop(key.decode(), None)
    else:
        partners[key.decode()] = orjson.loads(value)


# --- the gateway side (aiokafka, follows the topic) ---------------------------------------

class PartnerDirectory:
    """Every partner record, kept current from the registry topic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic(PARTNERS.name)
        self.partners: dict[str, dict[str, Any]] = {}
        self.ready = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None

    def get(self, partner_id: str) -> dict[str, Any] | None:
        return self.partners.get(partner_id)

    async def run(self) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                                          group_id=None, enable_auto_commit=False,
                                          **security.client_options(self.settings))
        await self._consumer.start()
        try:
            partitions = None
            while not partitions:
                await self._consumer._client.force_metadata_update()
                partitions = self._consumer.partitions_for_topic(self.topic)
                if not partitions:
                    log.warning("gateway: registry topic %s not found yet", self.topic)
                    await asyncio.sleep(2.0)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            self._consumer.assign(tps)
            await self._consumer.seek_to_beginning(*tps)
            end = await self._consumer.end_offsets(tps)
            if all(offset == 0 for offset in end.values()):
                self.ready.set()
            while True:
                batches = await self._consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for r in records:
                        _apply(self.partners, r.key, r.value)
                if not self.ready.is_set() and await self._caught_up(tps, end):
                    log.info("gateway: registry read, %d partners", len(self.partners))
                    self.ready.set()
        finally:
            await self._consumer.stop()

    async def _caught_up(self, tps: list[TopicPartition], end: dict[TopicPartition, int]) -> bool:
        assert self._consumer is not None
        for tp in tps:
            if await self._consumer.position(tp) < end[tp]:
                return False
        return True

    async def follow(self) -> None:
        """run(), restarted after any failure: a gateway without its registry refuses all."""
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gateway: registry reader failed; restarting in 2 s")
                await asyncio.sleep(2.0)
