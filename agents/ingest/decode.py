"""Bytes -> JSON object, with a specific reason for each way that can fail."""

from __future__ import annotations

from typing import Any

import orjson

from agents.ingest.rejection import Rejected


def decode_object(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    """Decode a source message value; refuse anything that is not a JSON object."""
    if raw is None:
        raise Rejected("malformed_json", detail="empty message (tombstone)")
    if len(raw) > max_bytes:
        raise Rejected("oversized", detail=f"{len(raw)} bytes > limit {max_bytes}")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as utf:
            raise Rejected("not_utf8", detail=f"invalid UTF-8 at byte {utf.start}") from None
        raise Rejected("malformed_json", detail=str(exc)[:200]) from None
    if not isinstance(value, dict):
        raise Rejected("not_an_object", detail=f"JSON {type(value).__name__}, not an object")
    return value
