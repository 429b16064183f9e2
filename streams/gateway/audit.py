"""The gateway's audit trail: every partner action as a record on the audit topic.

Written before the action's answer where it can be (a denied request is audited, then
refused). If Kafka cannot take the record the action still proceeds, the failure is counted
(`rtcc_audit_write_failures_total`, alerted on) and the record is logged at error level, so
that an audit outage pages someone instead of taking the crime center's picture away.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from schemas.partner import AuditRecord
from streams import metrics, security
from streams.config import Settings
from streams.gateway.registry import now_iso
from streams.topics import AUDIT

log = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic(AUDIT.name)
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap,
                                         acks="all", linger_ms=5, request_timeout_ms=10_000,
                                         **security.client_options(self.settings))
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def record(self, action: str, obj: str, outcome: str, *, partner: dict[str, Any] | None,
                     client: str | None, detail: str | None = None) -> None:
        record = AuditRecord(
            time=now_iso(ms=True), action=action, object=obj, outcome=outcome,
            partner_id=partner["partner_id"] if partner else None,
            audience=partner.get("audience") if partner else None,
            client_address=client, detail=detail).asdict()
        metrics.AUDIT_RECORDS.labels(action, outcome).inc()
        try:
            if self.producer is None:
                raise RuntimeError("audit log not started")
            await self.producer.send_and_wait(
                self.topic, orjson.dumps(record),
                key=(record["partner_id"] or "unknown").encode())
        except Exception as exc:  # noqa: BLE001 (any failure to audit is counted and logged)
            metrics.AUDIT_WRITE_FAILURES.inc()
            log.error("audit: could not write %s: %s", record, type(exc).__name__)
