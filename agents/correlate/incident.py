"""One incident's lifecycle, folded from its CAD events (pure).

The state is a function of the *set* of events (de-duplicated by event id, applied in
(event time, event id) order), so a late, reordered or repeated delivery ends in the same
state as the clean ordered one. An incident has few events, so recomputing from its event
summaries on a late arrival is cheap.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

STEP_RANK = {
    "created": 0, "updated": 0, "dispatched": 1, "en_route": 2, "on_scene": 3,
    "cleared": 4, "closed": 5, "cancelled": 5,
}
UNIT_CLEAR = "cleared"
TERMINAL = ("closed", "cancelled")

# What an incident keeps of each event: enough to refold, nothing personal.
SUMMARY_FIELDS = (
    "event_id", "kind", "event_time", "received_time", "priority", "category", "mental_health",
    "type_code", "type_text", "latitude", "longitude", "cell", "address_text", "district",
    "beat", "units", "disposition", "status_text",
)

# The fields an operator sees; an update is published only when one of them changes.
OPERATOR_FIELDS = (
    "status", "priority", "category", "type_text", "mental_health", "cell", "address_text",
    "units", "disposition", "calls", "linked_reports", "crisis", "merged_into",
)


def summarise(event: Mapping[str, Any]) -> dict[str, Any]:
    return {k: event.get(k) for k in SUMMARY_FIELDS if event.get(k) not in (None, [], "")}


def _order(e: Mapping[str, Any]) -> tuple[str, int, str]:
    return (e["event_time"], STEP_RANK.get(e.get("kind", ""), 0), e["event_id"])


def fold(subject_id: str, agency_id: str, incident_number: str | None,
         events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The lifecycle state of an incident from its event summaries."""
    ordered = sorted({e["event_id"]: e for e in events}.values(), key=_order)
    state: dict[str, Any] = {
        "subject_id": subject_id, "agency_id": agency_id, "incident_number": incident_number,
        "status": "created", "priority": None, "category": "other", "mental_health": False,
        "type_code": None, "type_text": None, "latitude": None, "longitude": None, "cell": None,
        "address_text": None, "district": None, "beat": None, "units": [],
        "disposition": None, "status_text": None, "times": {}, "event_ids": [],
    }
    unit_steps: dict[str, str] = {}
    terminal = None
    for e in ordered:
        kind = e.get("kind", "updated")
        state["event_ids"].append(e["event_id"])
        times = state["times"]
        if e.get("received_time") and "received" not in times:
            times["received"] = e["received_time"]
        times.setdefault(kind, e["event_time"])  # first time each step was reached
        times["last_event"] = e["event_time"]
        for name in ("type_code", "type_text", "category", "latitude", "longitude", "cell",
                     "address_text", "district", "beat", "disposition", "status_text"):
            if e.get(name) is not None:
                state[name] = e[name]
        if e.get("priority") is not None:
            # The most urgent priority any event gave: a call upgraded stays upgraded.
            state["priority"] = min(state["priority"] or 9, e["priority"])
        state["mental_health"] = state["mental_health"] or bool(e.get("mental_health"))
        for unit in e.get("units") or []:
            if STEP_RANK.get(kind, 0) >= STEP_RANK.get(unit_steps.get(unit, "created"), 0) \
                    or kind == UNIT_CLEAR:
                unit_steps[unit] = kind
        if kind in TERMINAL:
            terminal = kind
    state["times"].setdefault("received", state["times"].get("created")
                              or (ordered[0]["event_time"] if ordered else None))
    state["units"] = sorted(unit_steps)
    state["status"] = _status(unit_steps, terminal, ordered)
    return state


def _status(unit_steps: Mapping[str, str], terminal: str | None,
            ordered: list[Mapping[str, Any]]) -> str:
    if terminal:
        return terminal
    if unit_steps:
        if all(step == UNIT_CLEAR for step in unit_steps.values()):
            return "cleared"
        active = [s for s in unit_steps.values() if s != UNIT_CLEAR]
        return max(active, key=lambda s: STEP_RANK.get(s, 0))
    steps = [e.get("kind", "created") for e in ordered if e.get("kind") != "updated"]
    return max(steps, key=lambda s: STEP_RANK.get(s, 0)) if steps else "created"


def is_finished(state: Mapping[str, Any]) -> bool:
    """Closed, cancelled, or every unit cleared (SF Fire's data has no 'closed' step)."""
    return state["status"] in TERMINAL or state["status"] == "cleared"


def operator_view(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: state.get(k) for k in OPERATOR_FIELDS}


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    if before is None:
        return sorted(k for k, v in after.items() if v not in (None, [], {}, False))
    return sorted(k for k in after if before.get(k) != after.get(k))
