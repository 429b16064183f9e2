"""SA updates: versioned, with ids derived from content, published only on a real change."""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

import orjson


def fingerprint(view: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(view, option=orjson.OPT_SORT_KEYS)).hexdigest()


def update_id(subject_id: str, version: int, view: Mapping[str, Any]) -> str:
    """Same subject, version and content give the same id, whichever worker computes it."""
    digest = hashlib.sha256(f"{subject_id}|{version}|{fingerprint(view)}".encode()).hexdigest()
    return digest[:32]


def sa_update(*, subject_kind: str, subject_id: str, version: int, kind: str,
              view: Mapping[str, Any], state: Mapping[str, Any], changed: list[str],
              reason: str, source_event_ids: list[str], event_time: str,
              audience_flags: list[str]) -> dict[str, Any]:
    """The SA update record (schemas/sa_update.py), as the plain dict the agent sends."""
    return {
        "schema_version": 1,
        "update_id": update_id(subject_id, version, view),
        "subject_kind": subject_kind,
        "subject_id": subject_id,
        "version": version,
        "kind": kind,
        "changed": changed,
        "reason": reason,
        "state": dict(state),
        "source_event_ids": source_event_ids,
        "event_time": event_time,
        "audience_flags": audience_flags,
    }
