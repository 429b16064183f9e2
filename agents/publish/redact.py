"""Redaction: the one place where an SA update becomes what an audience may see (pure).

Allow-list only: a state field reaches an audience only if its policy names it, so a field
added upstream (or personal data that slipped into a state) stays internal by default.
Sensitive calls are withheld from the audiences whose policy says so, in every detail,
including their location; generalised locations are cell centres, never coordinates.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import h3

from agents.publish.policy import AudiencePolicy, Sensitivity

# Dispositions of one update for one audience (rtcc_audience_updates_total{outcome}).
SENT = "sent"
WITHDRAWN = "withdrawn"  # the subject became sensitive: partners drop what they had
AGGREGATED = "aggregated"  # counted per area, never sent one by one to partners
SUPPRESSIONS = ("subject_not_shared", "not_flagged", "sensitive_withheld",
                "unchanged_for_audience")

TERMINAL_KINDS = ("opened", "closed", "merged", "hotspot_opened", "hotspot_escalated",
                  "hotspot_closed", "cluster_opened", "cluster_closed")
AGGREGATE_FIELDS = ("category", "cell", "merged_into", "status")
# A change of one of these can make an incident sensitive after partners saw it.
SENSITIVITY_FIELDS = ("category", "mental_health", "type_code", "type_text", "crisis")
_HOUSE_NUMBER = re.compile(r"^\s*(\d+)\s+(?:block\s+of\s+)?(.+)$", re.IGNORECASE)
_ALREADY_GENERAL = re.compile(r"\bblock\b|/|&|\band\b", re.IGNORECASE)


@dataclass(frozen=True)
class Redacted:
    """What became of one update for one audience: a payload to send, or why not."""

    outcome: str
    payload: dict[str, Any] | None = None


def opaque(subject_id: str) -> str:
    """A stable id that does not reveal the subject's number or exact cell."""
    kind = subject_id.split(":", 1)[0]
    return f"{kind}:{hashlib.sha256(subject_id.encode()).hexdigest()[:16]}"


def block_of(address: str | None) -> str | None:
    """'5237 N 35TH ST' -> '5200 block of N 35TH ST'; intersections and block addresses
    pass; anything else (a named place can be a shelter or a home) is withheld."""
    if not address:
        return None
    match = _HOUSE_NUMBER.match(address)
    if match:
        number, street = int(match.group(1)), match.group(2).strip()
        return f"{number // 100 * 100} block of {street}"
    return address.strip() if _ALREADY_GENERAL.search(address) else None


def coarse_cell(state: Mapping[str, Any], resolution: int) -> str | None:
    lat, lon = state.get("latitude"), state.get("longitude")
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
        try:
            return h3.latlng_to_cell(float(lat), float(lon), resolution)
        except (ValueError, h3.H3BaseException):
            return None
    cell = state.get("cell")
    if isinstance(cell, str) and h3.is_valid_cell(cell):
        if h3.get_resolution(cell) <= resolution:
            return cell
        return h3.cell_to_parent(cell, resolution)
    return None


def _get(state: Mapping[str, Any], dotted: str) -> Any:
    value: Any = state
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def visible_state(state: Mapping[str, Any], policy: AudiencePolicy,
                  subject_kind: str) -> dict[str, Any]:
    """The state fields the audience may see, with locations generalised by its policy."""
    allowed = policy.fields_of(subject_kind)
    out: dict[str, Any] = {}
    general = policy.location == "generalised"
    cell = coarse_cell(state, policy.location_resolution) if general else None
    for name in allowed:
        if general and name in ("latitude", "longitude", "cell", "boundary"):
            continue
        if general and name == "address_text":
            value = block_of(state.get("address_text"))
        elif general and name in ("hotspot_id", "cluster_id") and state.get(name):
            value = opaque(str(state[name]))
        else:
            value = _get(state, name)
        if value is not None:
            _put(out, name, value)
    if general and cell is not None:
        if "cell" in allowed:
            out["cell"] = cell
        if "latitude" in allowed and "longitude" in allowed:
            lat, lon = h3.cell_to_latlng(cell)
            out["latitude"], out["longitude"] = round(lat, 5), round(lon, 5)
    return out


def _envelope(update: Mapping[str, Any], policy: AudiencePolicy, subject_id: str,
              state: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    top = {name.split(".")[0] for name in policy.fields_of(update["subject_kind"])}
    payload: dict[str, Any] = {
        "update_id": update["update_id"],
        "audience": policy.name,
        "subject_kind": update["subject_kind"],
        "subject_id": subject_id,
        "version": update["version"],
        "kind": kind,
        "changed": [c for c in update.get("changed") or [] if c in top],
        "event_time": update["event_time"],
        "published_time": update.get("published_time"),
        "state": state,
    }
    if policy.reason:
        payload["reason"] = update.get("reason")
        payload["source_event_ids"] = list(update.get("source_event_ids") or [])
    if policy.delay_s > 0:
        payload["release_time"] = release_time(update, policy.delay_s)
    return payload


def release_time(update: Mapping[str, Any], delay_s: float) -> str:
    published = update.get("published_time") or update["event_time"]
    when = datetime.fromisoformat(published.replace("Z", "+00:00")) + timedelta(seconds=delay_s)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aggregate(update: Mapping[str, Any], policy: AudiencePolicy,
               sensitive: bool) -> Redacted:
    """An incident's contribution to the counts per area: category, coarse cell, open."""
    changed = set(update.get("changed") or [])
    if update["kind"] not in TERMINAL_KINDS and not changed & set(AGGREGATE_FIELDS):
        return Redacted("unchanged_for_audience")
    state = update["state"]
    finished = state.get("status") in ("closed", "cancelled", "cleared") \
        or bool(state.get("merged_into"))
    contribution: dict[str, Any] = {
        "category": "sensitive" if sensitive else state.get("category"),
        "district": state.get("district"),
        "status": "closed" if finished else "open",
    }
    if not sensitive:
        contribution["cell"] = coarse_cell(state, policy.location_resolution)
    allowed = policy.fields_of("incident")
    contribution = {k: v for k, v in contribution.items() if k in allowed and v is not None}
    payload = _envelope(update, policy, opaque(update["subject_id"]), contribution,
                        update["kind"])
    payload["changed"] = []
    payload["aggregate"] = True
    return Redacted(AGGREGATED, payload)


def redact(update: Mapping[str, Any], policy: AudiencePolicy,
           sensitivity: Sensitivity) -> Redacted:
    """What `policy`'s audience receives of `update`."""
    kind = update["subject_kind"]
    if kind not in policy.subjects:
        return Redacted("subject_not_shared")
    if policy.require_flag and policy.require_flag not in (update.get("audience_flags") or ()):
        return Redacted("not_flagged")
    state = update.get("state") or {}
    sensitive = kind == "incident" and sensitivity.matches(state)
    if kind == "incident" and policy.aggregate:
        return _aggregate(update, policy, sensitive and policy.sensitive == "withhold")
    general = policy.location == "generalised"
    subject_id = opaque(update["subject_id"]) if general and kind != "incident" \
        else update["subject_id"]
    if sensitive and policy.sensitive == "withhold":
        if update["version"] > 1 and set(update.get("changed") or ()) & set(SENSITIVITY_FIELDS):
            payload = _envelope(update, policy, subject_id, None, WITHDRAWN)
            payload["changed"] = []
            return Redacted(WITHDRAWN, payload)
        return Redacted("sensitive_withheld")
    payload = _envelope(update, policy, subject_id, visible_state(state, policy, kind),
                        update["kind"])
    if update["version"] > 1 and update["kind"] not in TERMINAL_KINDS and not payload["changed"]:
        return Redacted("unchanged_for_audience")
    return Redacted(SENT, payload)
