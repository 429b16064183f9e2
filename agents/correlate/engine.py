"""The correlation engine of one partition: events in event-time order -> SA updates (pure).

No Faust and no I/O: state lives in the mappings passed in (Faust tables in the worker,
dicts in tests), and every changed record is re-assigned so that a table logs it. The
in-memory indexes (cells, expiry times, CAD numbers) are derived from the stores and are
rebuilt by `restore()` after a restart.

Every event applied gets exactly one disposition: it contributed to a published update, or
it was deliberately suppressed for a named reason. Nothing is dropped silently.

Borders. Each engine owns one area (a coarse H3 cell: the key of the normalised topic).
An event near the border of its area is also delivered to the neighbouring areas as a
*ghost* (same event id, `ghost: true`). Ghosts are kept as *remote* records: they never
open, publish or count anything, but they are candidates for matching. Both areas thus
see the same events near the border, in the same event-time order, and apply the same
rule (the earliest call is the primary; the closest candidate wins), so they agree on
every merge and link without talking to each other; the area that owns the primary (or
the incident a report links to) publishes, the other counts a suppression
(`merged_duplicate`, `linked_remote`). The ghost margin (RTCC_BORDER_RINGS fine cells,
~350 m by default) covers the duplicate and report radii; candidates further than the
margin from a border are not seen across it, a documented limit.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, MutableMapping

import h3

from agents.correlate import incident as lifecycle
from agents.correlate.hotspots import CLOSED as HOTSPOT_CLOSED, HotspotChange, HotspotTracker
from agents.correlate.matching import CellIndex, MatchRules, closest, distance_m, rings_for
from agents.correlate.ordering import event_ts
from agents.correlate.updates import sa_update

CRISIS_STEPS = {"requested": "created", "dispatched": "dispatched", "on_scene": "on_scene",
                "resolved": "closed", "transferred": "closed"}

# A report or crisis request may come in a little before the CAD call it belongs to.
REPORT_LEAD_S = 60.0

# Dispositions of an applied event (label values of rtcc_correlation_events_total).
PUBLISHED = "published"
SUPPRESSIONS = ("duplicate_event", "unchanged", "merged_duplicate", "unclustered_report",
                "linked_remote")


@dataclass(frozen=True)
class CorrelationConfig:
    rules: MatchRules = field(default_factory=MatchRules)
    cell_resolution: int = 9
    incident_ttl_s: float = 4 * 3600.0  # an open incident silent this long is closed
    # A closed incident is kept this long for late events (SF Fire units report "available"
    # hours after the call; and CAD numbers are unique within a day), so that its versions
    # never start again at 1.
    closed_retention_s: float = 24 * 3600.0
    cluster_resolution: int = 8  # community clusters: ~0.7 km2 cells
    cluster_min_reports: int = 3
    cluster_window_s: float = 3600.0
    # Reports that cluster: public-safety categories. Heat, noise-free housing and bulk
    # pick-up complaints ("other") are on the 311 feed but no concern of an RTCC.
    cluster_categories: frozenset[str] = frozenset(
        {"violent", "property", "traffic", "disorder", "medical", "fire", "mental_health",
         "welfare"})


@dataclass
class Result:
    """What applying one event, or advancing the watermark, produced."""

    updates: list[dict[str, Any]] = field(default_factory=list)
    dispositions: list[str] = field(default_factory=list)
    tombstones: list[str] = field(default_factory=list)  # subjects forgotten for good
    merges: int = 0
    links: dict[str, int] = field(default_factory=dict)

    def extend(self, other: "Result") -> None:
        self.updates += other.updates
        self.dispositions += other.dispositions
        self.tombstones += other.tombstones
        self.merges += other.merges
        for k, v in other.links.items():
            self.links[k] = self.links.get(k, 0) + v


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def hotspot_update(change: HotspotChange) -> dict[str, Any]:
    """A hotspot announcement as an SA update; each level is announced once, so the
    version follows from the level: opened 1, escalated 2, closed one past the top level."""
    version = {"hotspot_opened": 1, "hotspot_escalated": change.level}.get(
        change.kind, change.level + 1)
    state = change.state()
    view = {"status": change.status, "level": change.level, "count": change.count}
    return sa_update(
        subject_kind="hotspot", subject_id=change.hotspot_id, version=version,
        kind=change.kind, view=view, state=state, changed=sorted(view), reason=change.reason,
        source_event_ids=list(change.event_ids), event_time=change.event_time,
        audience_flags=["community", "public"])


def hotspot_result(changes: list[HotspotChange]) -> Result:
    """Hotspot changes as SA updates. A closed hotspot also leaves the live picture for good
    (its id names its window: the cell's next hotspot is another subject)."""
    return Result(updates=[hotspot_update(c) for c in changes],
                  tombstones=[c.hotspot_id for c in changes if c.kind == HOTSPOT_CLOSED])


class Correlator:
    def __init__(self, incidents: MutableMapping[str, Any], groups: MutableMapping[str, Any],
                 config: CorrelationConfig | None = None,
                 on_finished: Callable[[dict[str, Any]], None] | None = None,
                 hotspots: HotspotTracker | None = None) -> None:
        self.incidents = incidents  # subject_id -> incident record (CAD and crisis)
        self.groups = groups  # "g:<cell>:<category>" -> unlinked reports; cluster state
        self.config = config or CorrelationConfig()
        self.on_finished = on_finished  # e.g. the KPI aggregator
        self.hotspots = hotspots
        self.cells = CellIndex()
        self.by_number: dict[str, set[str]] = {}
        self.expiry: list[tuple[float, str]] = []
        self._last_lapse = float("-inf")
        self.rings = {
            "duplicate": rings_for(self.config.rules.duplicate_radius_m, self.config.cell_resolution),
            "report": rings_for(self.config.rules.report_radius_m, self.config.cell_resolution),
            "crisis": rings_for(self.config.rules.crisis_radius_m, self.config.cell_resolution),
        }

    # ---------------------------------------------------------------- state and indexes
    def restore(self) -> None:
        """Rebuild the in-memory indexes from the stores (after a restart or rebalance)."""
        self.cells, self.by_number, self.expiry = CellIndex(), {}, []
        for rec in self.incidents.values():
            self._index(rec)

    def _index(self, rec: dict[str, Any]) -> None:
        subject = rec["subject_id"]
        if rec["source"] == "cad" and rec.get("incident_number"):
            self.by_number.setdefault(rec["incident_number"], set()).add(subject)
        if rec.get("closed_ts") is None:
            self.cells.add(subject, rec["state"].get("cell"))
            due = rec["last_ts"] + self.config.incident_ttl_s
        else:
            self.cells.remove(subject)
            due = rec["closed_ts"] + self.config.closed_retention_s
        heapq.heappush(self.expiry, (due, subject))

    def _unindex(self, rec: dict[str, Any]) -> None:
        self.cells.remove(rec["subject_id"])
        subjects = self.by_number.get(rec.get("incident_number") or "")
        if subjects is not None:
            subjects.discard(rec["subject_id"])
            if not subjects:
                del self.by_number[rec["incident_number"]]

    def _save(self, rec: dict[str, Any]) -> None:
        self.incidents[rec["subject_id"]] = rec
        self._index(rec)

    # ---------------------------------------------------------------- events
    def apply(self, event: dict[str, Any]) -> Result:
        if event.get("ghost"):
            return self._apply_ghost(event)
        source = event["source"]
        if source == "cad":
            result = self._apply_incident_event(event)
        elif source == "crisis":
            result = self._apply_crisis(event)
        else:
            result = self._apply_report(event)
        if self.hotspots is not None:
            result.extend(hotspot_result(self.hotspots.observe(event)))
        return result

    def _new_record(self, event: dict[str, Any]) -> dict[str, Any]:
        return {
            "subject_id": event["subject_id"], "source": event["source"],
            "agency_id": event["agency_id"], "incident_number": event.get("incident_number"),
            "events": [], "state": {}, "view": None, "version": 0, "calls": [],
            "merged_into": None, "linked_reports": [], "crisis": {}, "last_ts": event_ts(event),
            "closed_ts": None, "remote": bool(event.get("ghost")),
        }

    def _apply_incident_event(self, event: dict[str, Any]) -> Result:
        rec = self.incidents.get(event["subject_id"])
        promoted = rec is not None and rec.get("remote")
        if promoted:
            # Known here from ghosts of a neighbouring area, now an event of our own: the
            # incident is ours from now on (its ghost came first, or it moved across).
            rec["remote"] = False
        seen = rec is not None and any(e["event_id"] == event["event_id"] for e in rec["events"])
        if seen and not promoted:
            return Result(dispositions=["duplicate_event"])
        if rec is None:
            rec = self._new_record(event)
        # Never published here and not merged: it is new to this area's picture.
        is_new = rec["version"] == 0 and rec["merged_into"] is None
        self._add_event(rec, event, seen)
        result = Result()
        if is_new and rec["source"] == "cad":
            primary = self._duplicate_of(rec)
            if primary is not None:
                result = self._merge(primary, rec, event)
                self._save(rec)
                # Published here when the primary is ours; across the border, its own area
                # publishes the merge and this call is a suppressed duplicate.
                result.dispositions.append("merged_duplicate" if primary.get("remote")
                                           else PUBLISHED)
                return result
        if rec["merged_into"] is not None:
            self._close_if_finished(rec, result)
            self._save(rec)
            result.dispositions.append("merged_duplicate")
            return result
        reason = f"{event['kind']} ({event.get('type_text') or event.get('category')})"
        result.extend(self._publish(rec, None, reason, [event["event_id"]]))
        self._close_if_finished(rec, result)
        self._save(rec)
        result.dispositions.append(PUBLISHED if result.updates else "unchanged")
        return result

    def _apply_ghost(self, event: dict[str, Any]) -> Result:
        """A copy of a neighbouring area's event: a candidate here, and it may join (or be
        linked to) a local incident, which is then published here. No disposition: the
        event is accounted for in its own area."""
        result = Result()
        if event["source"] == "community":
            target = self._report_target(event)
            if target is not None and not target.get("remote"):
                return self._link_report(target, event, result)
            return result
        if event["source"] == "crisis":
            target_id = self._crisis_target(event)
            target = self.incidents.get(target_id) if target_id else None
            if target is not None and not target.get("remote"):
                return self._fold_crisis(target, event, result)
            return result
        rec = self.incidents.get(event["subject_id"])
        is_new = rec is None
        if rec is None:
            rec = self._new_record(event)
        elif any(e["event_id"] == event["event_id"] for e in rec["events"]):
            return result
        self._add_event(rec, event)
        if is_new:
            primary = self._duplicate_of(rec)
            if primary is not None:
                result = self._merge(primary, rec, event, " (across the area border)")
        if rec["closed_ts"] is None and lifecycle.is_finished(rec["state"]):
            rec["closed_ts"] = rec["last_ts"]
        self._save(rec)
        return result

    def _add_event(self, rec: dict[str, Any], event: dict[str, Any], seen: bool = False) -> None:
        """Fold an event into an incident record (refolding even a seen one: a record taken
        over from ghosts is recomputed as ours)."""
        if not seen:
            rec["events"].append(lifecycle.summarise(event))
        rec["last_ts"] = max(rec["last_ts"], event_ts(event))
        rec["state"] = lifecycle.fold(rec["subject_id"], rec["agency_id"],
                                      rec["incident_number"], rec["events"])

    def _merge(self, primary: dict[str, Any], rec: dict[str, Any], event: dict[str, Any],
               where: str = "") -> Result:
        """Merge a new call into the primary of its event; publish it if the primary is ours."""
        rec["merged_into"] = primary["subject_id"]
        if primary.get("remote"):
            return Result()
        primary["calls"].append(rec["subject_id"])
        result = Result(merges=1)
        n = len(primary["calls"]) + 1
        result.extend(self._publish(primary, "merged", f"{n} calls about one event: "
                                    f"{rec['subject_id']}{where} merged", [event["event_id"]]))
        self._save(primary)  # a table logs assignments only: the primary changed
        return result

    def _close_if_finished(self, rec: dict[str, Any], result: Result) -> None:
        if rec["closed_ts"] is None and lifecycle.is_finished(rec["state"]):
            rec["closed_ts"] = rec["last_ts"]
            self.cells.remove(rec["subject_id"])
            if self.on_finished is not None and rec["source"] == "cad":
                self.on_finished(self._kpi_summary(rec))

    def _duplicate_of(self, rec: dict[str, Any]) -> dict[str, Any] | None:
        """The earlier active incident this new call duplicates, if any."""
        state, rules = rec["state"], self.config.rules
        if state.get("cell") is None:
            return None
        received = datetime.fromisoformat(state["times"]["received"]).timestamp()
        candidates = []
        for other_id in self.cells.near(state["cell"], self.rings["duplicate"]):
            other = self.incidents.get(other_id)
            if other is None or other_id == rec["subject_id"] or other["source"] != "cad":
                continue
            while other["merged_into"] is not None:  # merge into the group's primary
                primary = self.incidents.get(other["merged_into"])
                if primary is None:  # forgotten already: the group is over
                    break
                other = primary
            if other["merged_into"] is not None or other["closed_ts"] is not None:
                continue
            o = other["state"]
            if o.get("latitude") is None or not rules.categories_compatible(
                    o["category"], state["category"]):
                continue
            o_received = datetime.fromisoformat(o["times"]["received"]).timestamp()
            if abs(received - o_received) > rules.duplicate_window_s:
                continue
            d = distance_m(state["latitude"], state["longitude"], o["latitude"], o["longitude"])
            if d <= rules.duplicate_radius_m:
                candidates.append((d, other["subject_id"]))
        chosen = closest(candidates)
        return self.incidents[chosen] if chosen else None

    def _near_active(self, cell: str, lat: float, lon: float, ts: float, rings: int,
                     radius_m: float, window_s: float,
                     accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        candidates = []
        for other_id in self.cells.near(cell, rings):
            other = self.incidents.get(other_id)
            if other is None or other["merged_into"] is not None or not accept(other):
                continue
            o = other["state"]
            if o.get("latitude") is None:
                continue
            received = datetime.fromisoformat(o["times"]["received"]).timestamp()
            if not received - REPORT_LEAD_S <= ts <= received + window_s:
                continue
            d = distance_m(lat, lon, o["latitude"], o["longitude"])
            if d <= radius_m:
                candidates.append((d, other_id))
        chosen = closest(candidates)
        return self.incidents[chosen] if chosen else None

    def _apply_crisis(self, event: dict[str, Any]) -> Result:
        """Fold a crisis-team event into its CAD incident, or keep it as its own incident."""
        subject = event["subject_id"]
        rec = self.incidents.get(subject)
        target_id = rec.get("linked_to") if rec else None
        if target_id is None:
            target_id = self._crisis_target(event)
        step = dict(event, kind=CRISIS_STEPS.get(event["kind"], "updated"))
        if target_id is None or target_id not in self.incidents:
            return self._apply_incident_event(step)
        target = self.incidents[target_id]
        if rec is None:
            rec = self._new_record(event)
            rec["linked_to"] = target_id
        if any(e["event_id"] == event["event_id"] for e in rec["events"]):
            return Result(dispositions=["duplicate_event"])
        rec["events"].append(lifecycle.summarise(step))
        rec["last_ts"] = max(rec["last_ts"], event_ts(event))
        rec["closed_ts"] = rec["last_ts"]  # not indexed for matching: it lives in its target
        self.incidents[subject] = rec
        if target.get("remote"):
            return Result(dispositions=["linked_remote"])  # published across the border
        result = self._fold_crisis(target, event, Result())
        result.dispositions.append(PUBLISHED if result.updates else "unchanged")
        return result

    def _fold_crisis(self, target: dict[str, Any], event: dict[str, Any],
                     result: Result) -> Result:
        target["crisis"][event["subject_id"]] = {
            "status": event["kind"], "team": (event.get("units") or [None])[0],
            "outcome": event.get("disposition"), "time": event["event_time"],
        }
        result.links["crisis"] = result.links.get("crisis", 0) + 1
        result.extend(self._publish(target, None, f"crisis team {event['kind']}",
                                    [event["event_id"]]))
        self._save(target)
        return result

    def _crisis_target(self, event: dict[str, Any]) -> str | None:
        number = event.get("incident_number")
        if number:
            for subject in sorted(self.by_number.get(number, ())):
                if self.incidents.get(subject, {}).get("closed_ts") is None:
                    return subject
        if event.get("cell") is None:
            return None
        rules = self.config.rules
        target = self._near_active(
            event["cell"], event["latitude"], event["longitude"], event_ts(event),
            self.rings["crisis"], rules.crisis_radius_m, rules.crisis_window_s,
            lambda other: other["source"] == "cad" and other["state"]["mental_health"])
        return target["subject_id"] if target else None

    def _apply_report(self, event: dict[str, Any]) -> Result:
        """Link a community report to a nearby active incident, else count it towards a cluster."""
        target = self._report_target(event)
        if target is not None and target.get("remote"):
            return Result(dispositions=["linked_remote"])  # published across the border
        if target is not None:
            result = self._link_report(target, event, Result())
            result.dispositions.append(PUBLISHED if result.updates else "unchanged")
            return result
        return self._cluster(event, event_ts(event))

    def _report_target(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if event.get("cell") is None:
            return None
        rules = self.config.rules
        return self._near_active(
            event["cell"], event["latitude"], event["longitude"], event_ts(event),
            self.rings["report"], rules.report_radius_m, rules.report_window_s,
            lambda other: other["source"] == "cad")

    def _link_report(self, target: dict[str, Any], event: dict[str, Any],
                     result: Result) -> Result:
        if event["event_id"] in target["linked_reports"]:
            return result
        target["linked_reports"].append(event["event_id"])
        result.links["report"] = result.links.get("report", 0) + 1
        result.extend(self._publish(target, None, "community report linked",
                                    [event["event_id"]]))
        self._save(target)
        return result

    def _cluster_key(self, event: dict[str, Any]) -> str:
        if event.get("cell") is not None:
            area = h3.cell_to_parent(event["cell"], self.config.cluster_resolution)
        else:
            area = f"{event['agency_id']}/{event.get('district') or 'unknown'}"
        return f"g:{area}:{event['category']}"

    def _cluster(self, event: dict[str, Any], ts: float) -> Result:
        if event["category"] not in self.config.cluster_categories:
            return Result(dispositions=["unclustered_report"])
        key = self._cluster_key(event)
        group = self.groups.get(key) or {"reports": [], "cluster": None, "version": 0,
                                         "view": None, "area": key.split(":")[1],
                                         "category": event["category"]}
        if any(r[1] == event["event_id"] for r in group["reports"]):
            return Result(dispositions=["duplicate_event"])
        group["reports"].append([ts, event["event_id"]])
        group["reports"].sort()
        self._prune(group, ts)
        result = Result()
        if group["cluster"] is None and len(group["reports"]) >= self.config.cluster_min_reports:
            group["cluster"] = f"cluster:{group['area']}:{group['category']}:{iso(group['reports'][0][0])}"
            group["version"] = 0
            result.extend(self._publish_cluster(group, "cluster_opened", event))
        elif group["cluster"] is not None:
            result.extend(self._publish_cluster(group, "cluster_updated", event))
        self.groups[key] = group
        result.dispositions.append(PUBLISHED if result.updates else "unclustered_report")
        return result

    def _prune(self, group: dict[str, Any], now: float) -> None:
        horizon = now - self.config.cluster_window_s
        group["reports"] = [r for r in group["reports"] if r[0] > horizon]

    def _publish_cluster(self, group: dict[str, Any], kind: str,
                         event: dict[str, Any] | None, now: float | None = None) -> Result:
        view = {"reports": len(group["reports"]), "category": group["category"],
                "area": group["area"], "open": kind != "cluster_closed"}
        if view == group["view"]:
            return Result()
        changed = lifecycle.changed_fields(group["view"], view)
        group["version"] += 1
        group["view"] = view
        times = [r[0] for r in group["reports"]] or [now or 0.0]
        state = {**view, "cluster_id": group["cluster"], "report_ids": [r[1] for r in group["reports"]],
                 "first_report": iso(min(times)), "last_report": iso(max(times))}
        if not group["area"].count("/") and h3.is_valid_cell(group["area"]):
            state["latitude"], state["longitude"] = h3.cell_to_latlng(group["area"])
        event_time = event["event_time"] if event else iso(now or max(times))
        window_min = f"{self.config.cluster_window_s / 60:.0f} min"
        reason = (f"no new {group['category']} reports nearby for {window_min}"
                  if kind == "cluster_closed" else
                  f"{view['reports']} {group['category']} reports within {window_min} nearby")
        return Result(updates=[sa_update(
            subject_kind="cluster", subject_id=group["cluster"], version=group["version"],
            kind=kind, view=view, state=state, changed=changed, reason=reason,
            source_event_ids=[event["event_id"]] if event else [], event_time=event_time,
            audience_flags=["community"])])

    # ---------------------------------------------------------------- publishing
    def _view(self, rec: dict[str, Any]) -> dict[str, Any]:
        view = lifecycle.operator_view(rec["state"])
        view.update(calls=len(rec["calls"]) + 1, linked_reports=len(rec["linked_reports"]),
                    crisis={k: v["status"] for k, v in sorted(rec["crisis"].items())},
                    merged_into=rec["merged_into"])
        return view

    def _publish(self, rec: dict[str, Any], kind: str | None, reason: str,
                 source_event_ids: list[str]) -> Result:
        view = self._view(rec)
        if view == rec["view"]:
            return Result()
        changed = lifecycle.changed_fields(rec["view"], view)
        if kind is None:
            if rec["version"] == 0:
                kind = "opened"
            elif lifecycle.is_finished(rec["state"]) and not lifecycle.is_finished(
                    {"status": rec["view"]["status"]}):
                kind = "closed"
            else:
                kind = "updated"
        rec["version"] += 1
        rec["view"] = view
        state = {k: v for k, v in rec["state"].items() if k != "event_ids"}
        state.update(view, calls_merged=list(rec["calls"]),
                     linked_report_ids=list(rec["linked_reports"]), crisis=dict(rec["crisis"]))
        flags = ["crisis"] if view["mental_health"] or rec["crisis"] or rec["source"] == "crisis" else []
        return Result(updates=[sa_update(
            subject_kind="incident", subject_id=rec["subject_id"], version=rec["version"],
            kind=kind, view=view, state=state, changed=changed, reason=reason,
            source_event_ids=source_event_ids,
            event_time=rec["state"]["times"].get("last_event") or iso(rec["last_ts"]),
            audience_flags=flags)])

    def _kpi_summary(self, rec: dict[str, Any]) -> dict[str, Any]:
        state, times = rec["state"], rec["state"]["times"]
        return {
            "subject_id": rec["subject_id"], "agency_id": rec["agency_id"],
            "district": state.get("district"), "priority": state.get("priority"),
            "category": state.get("category"), "mental_health": state.get("mental_health"),
            "received_time": times.get("received"), "dispatched_time": times.get("dispatched"),
            "on_scene_time": times.get("on_scene"), "closed_time": iso(rec["last_ts"]),
            "crisis_team_responded": bool(rec["crisis"]),
        }

    # ---------------------------------------------------------------- event time passes
    def advance(self, watermark: float) -> Result:
        """Close silent incidents, forget old ones, and let stale clusters lapse."""
        result = Result()
        while self.expiry and self.expiry[0][0] <= watermark:
            due, subject = heapq.heappop(self.expiry)
            rec = self.incidents.get(subject)
            if rec is None:
                continue
            if rec["closed_ts"] is None:
                if rec["last_ts"] + self.config.incident_ttl_s > due:
                    continue  # it saw events since: a later entry covers it
                rec["closed_ts"] = rec["last_ts"] + self.config.incident_ttl_s
                rec["state"]["status"] = "closed"
                self.cells.remove(subject)
                if rec["merged_into"] is None and not rec.get("remote"):
                    result.extend(self._publish(
                        rec, "closed", f"no activity for {self.config.incident_ttl_s / 3600:g} h",
                        []))
                if self.on_finished is not None and rec["source"] == "cad" \
                        and not rec.get("remote"):
                    self.on_finished(self._kpi_summary(rec))
                self._save(rec)
            elif rec["closed_ts"] + self.config.closed_retention_s <= watermark:
                del self.incidents[subject]
                self._unindex(rec)
                if rec["version"] > 0:
                    result.tombstones.append(subject)
        result.extend(self._lapse_clusters(watermark))
        if self.hotspots is not None:
            result.extend(hotspot_result(self.hotspots.advance(watermark)))
        return result

    def _lapse_clusters(self, watermark: float) -> Result:
        result = Result()
        # Clusters lapse on a scale of minutes: look once per event-time minute, not per event.
        if watermark - self._last_lapse < 60.0:
            return result
        self._last_lapse = watermark
        for key in list(self.groups):
            group = self.groups[key]
            newest = group["reports"][-1][0] if group["reports"] else None
            if newest is not None and newest > watermark - self.config.cluster_window_s:
                continue
            # When it lapsed in event time, not when this look happened to come: that
            # depends on how releases were batched, and a replay must publish the same.
            lapsed = watermark if newest is None else newest + self.config.cluster_window_s
            self._prune(group, lapsed)
            if group["cluster"] is not None:
                result.extend(self._publish_cluster(group, "cluster_closed", None, lapsed))
                result.tombstones.append(group["cluster"])
            del self.groups[key]
        return result

    def size(self) -> dict[str, int]:
        return {"incidents": len(self.incidents), "groups": len(self.groups),
                "indexed_cells": len(self.cells), "incident_numbers": len(self.by_number),
                "expiry_entries": len(self.expiry)}
