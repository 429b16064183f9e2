"""Validated source message -> normalised event. Pure: no I/O, the clock is passed in.

One function per source, sharing the checks; each raises `Rejected` with a specific reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from agents.ingest import contract_check
from agents.ingest.decode import decode_object
from agents.ingest.geo import ServiceAreas, area_key, cell_of, neighbour_areas
from agents.ingest.rejection import Rejected
from agents.ingest.taxonomy import Taxonomy
from agents.ingest.times import check_range, iso_utc, parse_time
from schemas import CONTRACTS, records
from schemas.envelope import NormalisedEvent, Pii
from streams.config import Settings

SOURCE_CONTRACTS = {"cad": "cad-event", "crisis": "crisis-event", "community": "community-report"}


@dataclass(frozen=True)
class Origin:
    """Where a message was read from: its provenance on the normalised event."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None

    @property
    def ingest_time(self) -> str | None:
        if self.timestamp_ms is None:
            return None
        return iso_utc(datetime.fromtimestamp(self.timestamp_ms / 1000, timezone.utc))


@dataclass(frozen=True)
class IngestPolicy:
    """What the validation checks against, built once per worker from the settings."""

    areas: ServiceAreas
    taxonomy: Taxonomy
    min_event_year: int = 2000
    max_clock_skew_s: float = 300.0
    max_message_bytes: int = 256 * 1024
    cell_resolution: int = 9
    partition_resolution: int = 6
    border_rings: int = 2  # fine cells around an event that reach into neighbouring areas
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    @classmethod
    def from_settings(cls, settings: Settings) -> "IngestPolicy":
        return cls(
            areas=ServiceAreas.load(settings.service_areas_file),
            taxonomy=Taxonomy.load(settings.taxonomy_file),
            min_event_year=settings.min_event_year,
            max_clock_skew_s=settings.max_clock_skew_s,
            max_message_bytes=settings.max_message_bytes,
            cell_resolution=settings.hotspot_cell_resolution,
            partition_resolution=settings.partition_cell_resolution,
        )


_RULES = {
    source: (contract_check.rules_for(CONTRACTS[name]), CONTRACTS[name].version)
    for source, name in SOURCE_CONTRACTS.items()
}


def _times(msg: dict[str, Any], fields: tuple[str, ...], policy: IngestPolicy,
           agency_id: str) -> dict[str, str]:
    zone = policy.areas.zone_of(agency_id)
    now = policy.clock()
    out = {}
    for name in fields:
        if name in msg:
            when = parse_time(name, msg[name], zone)
            check_range(name, when, now, policy.min_event_year, policy.max_clock_skew_s)
            out[name] = iso_utc(when)
    return out


def _place(msg: dict[str, Any], policy: IngestPolicy) -> dict[str, Any]:
    lat, lon = msg.get("latitude"), msg.get("longitude")
    policy.areas.check(msg["agency_id"], lat, lon)
    cell = cell_of(lat, lon, policy.cell_resolution) if lat is not None and lon is not None \
        else None
    return {
        "latitude": lat,
        "longitude": lon,
        "cell": cell,
        "area_key": area_key(cell, msg["agency_id"], msg.get("district"),
                             policy.partition_resolution),
        "address_text": msg.get("address_text"),
        "district": msg.get("district"),
    }


def _pii(name: str | None, phone: str | None, narrative: str | None) -> Pii | None:
    if name is None and phone is None and narrative is None:
        return None
    return records.build(Pii, name=name, phone=phone, narrative=narrative)


def normalise_cad(msg: dict[str, Any], policy: IngestPolicy, origin: Origin) -> NormalisedEvent:
    msg = contract_check.check(msg, *_RULES["cad"])
    times = _times(msg, ("event_time", "received_time", "occurred_time"), policy, msg["agency_id"])
    kind = policy.taxonomy.classify(msg.get("incident_type_code"), msg.get("incident_type_text"))
    return records.build(
        NormalisedEvent,
        event_id=f"cad:{msg['agency_id']}:{msg['event_id']}",
        source="cad",
        kind=msg["event_type"],
        subject_id=f"cad:{msg['agency_id']}:{msg['incident_number']}",
        agency_id=msg["agency_id"],
        incident_number=msg["incident_number"],
        category=kind.category,
        mental_health=kind.mental_health,
        priority=policy.taxonomy.priority(msg["agency_id"], msg.get("priority"), kind.priority),
        type_code=msg.get("incident_type_code"),
        type_text=msg.get("incident_type_text"),
        event_time=times["event_time"],
        received_time=times.get("received_time"),
        ingest_time=origin.ingest_time,
        source_timestamp_ms=origin.timestamp_ms,
        **_place(msg, policy),
        beat=msg.get("beat"),
        units=msg.get("units", []),
        status_text=msg.get("status_text"),
        disposition=msg.get("disposition"),
        pii=_pii(msg.get("caller_name"), msg.get("caller_phone"), msg.get("narrative")),
        source_topic=origin.topic,
        source_partition=origin.partition,
        source_offset=origin.offset,
    )


def normalise_crisis(msg: dict[str, Any], policy: IngestPolicy, origin: Origin) -> NormalisedEvent:
    msg = contract_check.check(msg, *_RULES["crisis"])
    times = _times(msg, ("event_time", "requested_time"), policy, msg["agency_id"])
    reasons = msg.get("reason_codes", [])
    # A crisis-team event is a mental-health event by definition; the reason refines the
    # category (an overdose is medical) but never clears the flag.
    kind = policy.taxonomy.classify(reasons[0] if reasons else None, " ".join(reasons))
    category = kind.category if kind.mental_health else "mental_health"
    return records.build(
        NormalisedEvent,
        event_id=f"crisis:{msg['agency_id']}:{msg['event_id']}",
        source="crisis",
        kind=msg["status"],
        subject_id=f"crisis:{msg['agency_id']}:{msg['request_id']}",
        agency_id=msg["agency_id"],
        incident_number=msg.get("incident_number"),
        category=category,
        mental_health=True,
        priority=min(kind.priority, 2),
        type_code=reasons[0] if reasons else None,
        type_text=", ".join(reasons) or None,
        event_time=times["event_time"],
        received_time=times.get("requested_time"),
        ingest_time=origin.ingest_time,
        source_timestamp_ms=origin.timestamp_ms,
        **_place(msg, policy),
        units=[msg["team_id"]] if msg.get("team_id") else [],
        disposition=msg.get("outcome"),
        reason_codes=reasons,
        pii=_pii(msg.get("client_name"), msg.get("client_phone"), msg.get("narrative")),
        source_topic=origin.topic,
        source_partition=origin.partition,
        source_offset=origin.offset,
    )


def normalise_community(msg: dict[str, Any], policy: IngestPolicy,
                        origin: Origin) -> NormalisedEvent:
    msg = contract_check.check(msg, *_RULES["community"])
    times = _times(msg, ("reported_time", "occurred_time"), policy, msg["agency_id"])
    kind = policy.taxonomy.classify(msg["category"], msg.get("subcategory") or msg["category"])
    return records.build(
        NormalisedEvent,
        event_id=f"community:{msg['agency_id']}:{msg['report_id']}",
        source="community",
        kind="reported",
        subject_id=f"report:{msg['agency_id']}:{msg['report_id']}",
        agency_id=msg["agency_id"],
        category=kind.category,
        mental_health=kind.mental_health,
        # An unverified report is never more urgent than priority 3.
        priority=max(kind.priority, 3),
        type_code=msg["category"],
        type_text=msg.get("subcategory"),
        event_time=times.get("occurred_time", times["reported_time"]),
        received_time=times["reported_time"],
        ingest_time=origin.ingest_time,
        source_timestamp_ms=origin.timestamp_ms,
        **_place(msg, policy),
        community_source=msg["source"],
        pii=_pii(None, None, msg.get("text")),
        source_topic=origin.topic,
        source_partition=origin.partition,
        source_offset=origin.offset,
    )


NORMALISERS: dict[str, Callable[[dict[str, Any], IngestPolicy, Origin], NormalisedEvent]] = {
    "cad": normalise_cad,
    "crisis": normalise_crisis,
    "community": normalise_community,
}


def ghosts(event: NormalisedEvent, policy: IngestPolicy,
           partition_of: Callable[[str], int] | None = None) -> list[NormalisedEvent]:
    """Copies of an event for each neighbouring area it lies close to (see geo.neighbour_areas).

    With `partition_of` (area key -> partition of the normalised topic), at most one copy
    per partition that the event does not already reach: one correlation engine handles
    every area of its partition, and it applies a ghost of an event it already holds as a
    no-op, so a second copy there would cost a message and a buffered event for nothing.
    """
    if event.cell is None:
        return []
    areas = neighbour_areas(event.cell, policy.border_rings, policy.partition_resolution)
    if partition_of is not None:
        reached = {partition_of(event.area_key)}
        distinct = []
        for area in areas:
            partition = partition_of(area)
            if partition not in reached:
                reached.add(partition)
                distinct.append(area)
        areas = distinct
    return [records.copy(event, area_key=area, ghost=True) for area in areas]


def ingest(source: str, raw: bytes | None, policy: IngestPolicy, origin: Origin) -> NormalisedEvent:
    """The whole ingest stage for one message: decode, validate, normalise."""
    return NORMALISERS[source](decode_object(raw, policy.max_message_bytes), policy, origin)
