"""Partner registry record and audit record: who may subscribe, and what they did.

The registry is a compacted topic keyed by partner id; the gateway reads it whole (a global
table) and answers every request from it. API keys are never stored: only their SHA-256,
which is enough for long random keys (a slow hash protects guessable passwords, which these
are not).
"""

from __future__ import annotations

from typing import List, Optional

import faust

from schemas.contract import contract

AUDIT_ACTIONS = ("connect", "disconnect", "subscribe", "unsubscribe", "snapshot", "stream",
                 "registry_add", "registry_revoke", "denied")
AUDIT_OUTCOMES = ("ok", "denied", "error")


@contract(
    "partner", 1, "A partner of the crime center and the scope of what it may receive",
    docs={
        "schema_version": "Contract version; this file describes version 1.",
        "partner_id": "Stable id, also the first part of the partner's API key.",
        "name": "Organisation name, for operators and audit.",
        "audience": "Audience whose redaction policy applies (streams/defaults/audiences.yaml).",
        "key_hash": "'sha256:<hex>' of the API key; the key itself is shown once, at creation.",
        "districts": "Only subjects in these districts (empty: any).",
        "bbox": "Only subjects inside [min_lon, min_lat, max_lon, max_lat] (WGS-84).",
        "polygon": "Only subjects inside this ring of [lon, lat] points.",
        "categories": "Only these categories (empty: any).",
        "max_priority": "Only incidents of this priority or more urgent (1 most urgent).",
        "min_interval_s": "Minimum seconds between two updates of one subject (NENA-STA-024 "
        "maxRate); updates in between are coalesced into the newest.",
        "created_time": "When the record was written, UTC ISO-8601.",
        "revoked_time": "When access was revoked; a revoked partner is refused.",
    },
)
class Partner(faust.Record, serializer="orjson", include_metadata=False):
    partner_id: str
    audience: str
    key_hash: str
    created_time: str
    schema_version: int = 1
    name: Optional[str] = None
    districts: List[str] = []
    bbox: Optional[List[float]] = None
    polygon: Optional[List[List[float]]] = None
    categories: List[str] = []
    max_priority: Optional[int] = None
    min_interval_s: float = 0.0
    revoked_time: Optional[str] = None


@contract(
    "audit-record", 1, "One partner action, for the CJIS audit trail",
    docs={
        "schema_version": "Contract version; this file describes version 1.",
        "time": "When it happened, UTC ISO-8601 with milliseconds.",
        "partner_id": "Who; null when the caller could not be identified.",
        "action": "What was attempted.",
        "object": "On what: an endpoint, a subscription or a partner id.",
        "outcome": "ok, denied or error.",
        "client_address": "Network address of the caller.",
        "detail": "Why it was denied or failed; never a key or personal data.",
        "audience": "Audience of the partner, when known.",
    },
    enums={"action": AUDIT_ACTIONS, "outcome": AUDIT_OUTCOMES},
)
class AuditRecord(faust.Record, serializer="orjson", include_metadata=False):
    time: str
    action: str
    object: str
    outcome: str
    schema_version: int = 1
    partner_id: Optional[str] = None
    audience: Optional[str] = None
    client_address: Optional[str] = None
    detail: Optional[str] = None
