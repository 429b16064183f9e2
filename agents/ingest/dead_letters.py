"""Build the dead-letter record of a rejected message (pure)."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

import orjson

from agents.ingest.normalise import Origin
from agents.ingest.rejection import Rejected
from agents.ingest.times import iso_utc
from schemas.dead_letter import DeadLetter


# A dead letter must fit in one Kafka message (Faust's producer sends at most 1,000,000
# bytes), although base64 makes the bytes it carries 4/3 larger: a message up to the broker's
# 1 MiB would otherwise make a record that cannot be sent, and crash the agent. Bytes beyond
# these bounds are cut (only a message over RTCC_MAX_MESSAGE_BYTES, or a giant key, has
# them); the detail says so, and the whole message stays at its source offset.
MAX_KEPT_VALUE_BYTES = 512 * 1024
MAX_KEPT_KEY_BYTES = 16 * 1024


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The Kafka key of a dead letter: the message's key, cut like the record's copy."""
    return None if key is None else key[:MAX_KEPT_KEY_BYTES]


def _cut_note(name: str, data: bytes | None, limit: int) -> str | None:
    if data is None or len(data) <= limit:
        return None
    return f"{name} holds the first {limit} of {len(data)} bytes"


def dead_letter(rejected: Rejected, stage: str, origin: Origin, key: bytes | None,
                value: bytes | None, now: datetime | None = None) -> DeadLetter:
    notes = [n for n in (rejected.detail,
                         _cut_note("original_value_b64", value, MAX_KEPT_VALUE_BYTES),
                         _cut_note("original_key_b64", key, MAX_KEPT_KEY_BYTES)) if n]
    if value is not None:
        value = value[:MAX_KEPT_VALUE_BYTES]
    return DeadLetter(
        reason=rejected.reason,
        field=rejected.field,
        detail="; ".join(notes) or None,
        stage=stage,
        source_topic=origin.topic,
        source_partition=origin.partition,
        source_offset=origin.offset,
        source_timestamp=origin.ingest_time,
        original_key_b64=_b64(dead_letter_key(key)),
        original_value_b64=_b64(value) or "",
        failed_time=iso_utc(now or datetime.now(timezone.utc)),
    )


def unexpected(exc: BaseException) -> Rejected:
    """An exception that is not a validation result: a bug, dead-lettered, never fatal."""
    return Rejected("processing_error", detail=f"{type(exc).__name__}: {str(exc)[:200]}")


def stage_failure(stage: str, message: Any, value: Any, exc: BaseException) -> DeadLetter:
    """The dead letter of an event a later stage (correlate, kpi, publish) failed on: its
    decoded `value` serialised again, and where `message` (a Faust message) was read."""
    origin = Origin(message.topic, message.partition, message.offset,
                    int(message.timestamp * 1000) if message.timestamp else None)
    return dead_letter(unexpected(exc), stage, origin, message.key, orjson.dumps(value))
