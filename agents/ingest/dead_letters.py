"""Build the dead-letter record of a rejected message (pure)."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from agents.ingest.normalise import Origin
from agents.ingest.rejection import Rejected
from agents.ingest.times import iso_utc
from schemas.dead_letter import DeadLetter


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def dead_letter(rejected: Rejected, stage: str, origin: Origin, key: bytes | None,
                value: bytes | None, now: datetime | None = None) -> DeadLetter:
    return DeadLetter(
        reason=rejected.reason,
        field=rejected.field,
        detail=rejected.detail,
        stage=stage,
        source_topic=origin.topic,
        source_partition=origin.partition,
        source_offset=origin.offset,
        source_timestamp=origin.ingest_time,
        original_key_b64=_b64(key),
        original_value_b64=_b64(value) or "",
        failed_time=iso_utc(now or datetime.now(timezone.utc)),
    )


def unexpected(exc: BaseException) -> Rejected:
    """An exception that is not a validation result: a bug, dead-lettered, never fatal."""
    return Rejected("processing_error", detail=f"{type(exc).__name__}: {str(exc)[:200]}")
