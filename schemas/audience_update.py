"""The audience update: an SA update as one audience may see it (what partners receive).

Written by agents/publish on rtcc.sa.audience.<audience>, served by the gateway. The state
holds only the fields the audience's policy names (streams/defaults/audiences.yaml).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import faust

from schemas.contract import contract
from schemas.sa_update import SUBJECT_KINDS, UPDATE_KINDS


@contract(
    "audience-update", 1, "An SA update redacted for one audience",
    docs={
        "update_id": "Id of the SA update this was redacted from: de-duplicate by it.",
        "audience": "operator, crisis, community or public.",
        "subject_kind": "What the update is about.",
        "subject_id": "Id of the subject; opaque for hotspots and clusters of audiences with "
        "generalised locations, and for public counts.",
        "version": "The subject's version; gaps are versions with nothing new for you.",
        "kind": "What happened; 'withdrawn': the subject is no longer shared with you, drop it.",
        "changed": "State fields (of those you see) changed since the previous version.",
        "event_time": "Event time of the newest source event, UTC ISO-8601.",
        "published_time": "When the SA update was published, UTC ISO-8601.",
        "state": "The fields of the subject's state that the audience may see; null when "
        "withdrawn.",
        "reason": "Why the update was published (operator and crisis audiences).",
        "source_event_ids": "Normalised events behind the update (operator and crisis).",
        "release_time": "Not to be shown before this time (audiences with a delay).",
        "aggregate": "True: a contribution to the counts per area, never shown alone.",
    },
    enums={"subject_kind": SUBJECT_KINDS, "kind": UPDATE_KINDS + ("withdrawn",)},
)
class AudienceUpdate(faust.Record, serializer="orjson", include_metadata=False):
    update_id: str
    audience: str
    subject_kind: str
    subject_id: str
    version: int
    kind: str
    event_time: str
    changed: List[str] = []
    published_time: Optional[str] = None
    state: Optional[Dict[str, Any]] = None
    reason: Optional[str] = None
    source_event_ids: Optional[List[str]] = None
    release_time: Optional[str] = None
    aggregate: Optional[bool] = None
