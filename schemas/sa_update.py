"""The situational-awareness (SA) update: what partners subscribe to.

Published on an append-only topic (every update) and a compacted topic (the latest update
per subject). The update id is derived from the subject, its version and the content, so a
consumer that sees an update twice after a redelivery can drop the copy by id.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import faust

from schemas.contract import contract

SUBJECT_KINDS = ("incident", "hotspot", "cluster")
UPDATE_KINDS = (
    "opened", "updated", "merged", "closed",
    "hotspot_opened", "hotspot_escalated", "hotspot_closed",
    "cluster_opened", "cluster_updated", "cluster_closed",
)


@contract(
    "sa-update", 1, "Situational-awareness update about one incident, hotspot or cluster",
    docs={
        "schema_version": "Contract version; this file describes version 1.",
        "update_id": "Deterministic id: a hash of subject id, version and state. A consumer "
        "de-duplicates redelivered updates by this id.",
        "subject_kind": "What the update is about.",
        "subject_id": "Id of the incident, hotspot or cluster.",
        "version": "Grows by one with each update of the subject, starting at 1.",
        "kind": "What happened.",
        "changed": "Names of the state fields that changed since the previous version.",
        "reason": "Why the update was published, for the operator.",
        "state": "The subject's current state (contract of its kind).",
        "source_event_ids": "Normalised events that led to this update.",
        "event_time": "Event time of the newest source event, UTC ISO-8601.",
        "published_time": "When the update was published, UTC ISO-8601.",
        "audience_flags": "Audiences the subject is relevant to beyond operators, e.g. "
        "'crisis' for mental-health incidents.",
    },
    enums={"subject_kind": SUBJECT_KINDS, "kind": UPDATE_KINDS},
)
class SaUpdate(faust.Record, serializer="orjson", include_metadata=False):
    update_id: str
    subject_kind: str
    subject_id: str
    version: int
    kind: str
    state: Dict[str, Any]
    event_time: str
    schema_version: int = 1
    changed: List[str] = []
    reason: Optional[str] = None
    source_event_ids: List[str] = []
    published_time: Optional[str] = None
    audience_flags: List[str] = []
