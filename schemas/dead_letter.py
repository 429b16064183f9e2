"""The dead-letter record: a message the pipeline could not accept, with why and its bytes.

The original bytes are kept (base64) so that an engineer can fix the producer or the
validator and re-drive the message; reason and field make the dead-letter topic searchable.
"""

from __future__ import annotations

from typing import Optional

import faust

from schemas.contract import contract

REASONS = (
    "oversized",  # larger than RTCC_MAX_MESSAGE_BYTES
    "not_utf8",  # bytes are not UTF-8 text
    "malformed_json",  # not parseable JSON
    "not_an_object",  # JSON, but not an object
    "unsupported_schema_version",
    "missing_field",  # a required field is absent or empty
    "wrong_type",  # a field has the wrong JSON type
    "unknown_value",  # a field outside its enumeration
    "invalid_time",  # unparseable time
    "time_out_of_range",  # before the minimum year or beyond the allowed clock skew
    "invalid_coordinates",  # NaN, infinite, out of WGS-84 range, or only one of lat/lon
    "outside_service_area",  # valid coordinates outside every configured area
    "oversized_field",  # a string longer than allowed
    "processing_error",  # an unexpected exception: a bug, reported with its type
)


@contract(
    "dead-letter", 1, "Dead-letter record: a rejected message with the reason and its bytes",
    docs={
        "schema_version": "Contract version; this file describes version 1.",
        "reason": "Why the message was rejected (one of a fixed list, for alerting).",
        "field": "The offending field, when one is to blame.",
        "detail": "Human-readable detail; never contains the message's PII.",
        "stage": "Pipeline stage that rejected it, e.g. 'ingest.cad'.",
        "source_topic": "Topic the message was read from.",
        "source_partition": "Its partition.",
        "source_offset": "Its offset.",
        "source_timestamp": "Kafka timestamp of the message, UTC ISO-8601.",
        "original_key_b64": "The message key, base64.",
        "original_value_b64": "The message value exactly as received, base64.",
        "failed_time": "When it was rejected, UTC ISO-8601.",
    },
    enums={"reason": REASONS},
)
class DeadLetter(faust.Record, serializer="orjson", include_metadata=False):
    reason: str
    stage: str
    source_topic: str
    source_partition: int
    source_offset: int
    original_value_b64: str
    failed_time: str
    schema_version: int = 1
    field: Optional[str] = None
    detail: Optional[str] = None
    source_timestamp: Optional[str] = None
    original_key_b64: Optional[str] = None
