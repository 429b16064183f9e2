"""The normalised event: what every source becomes after validation and enrichment.

One shape for CAD, crisis and community events so that correlation reads one topic. PII is
kept apart in `pii` so that later stages can withhold it by dropping one field.
"""

from __future__ import annotations

from typing import List, Optional

import faust

from schemas.contract import contract

SOURCES = ("cad", "crisis", "community")
CATEGORIES = (
    "violent", "property", "traffic", "disorder", "medical", "fire", "mental_health",
    "welfare", "proactive", "other",
)


@contract(
    "pii", 1, "Personal data of an event, kept apart so that it can be withheld whole",
    docs={
        "name": "Caller's or client's name.",
        "phone": "Callback or contact number.",
        "narrative": "Free text: call-taker notes, clinician notes, report text.",
    },
)
class Pii(faust.Record, serializer="orjson", include_metadata=False):
    name: Optional[str] = None
    phone: Optional[str] = None
    narrative: Optional[str] = None


@contract(
    "normalised-event", 1, "Normalised event: a validated, enriched event of any source",
    docs={
        "schema_version": "Contract version; this file describes version 1.",
        "event_id": "Globally unique id: '<source>:<agency_id>:<source event id>'.",
        "source": "Which source stream the event came from.",
        "kind": "Lifecycle step: the CAD event type, crisis status, or 'reported'.",
        "subject_id": "What the event is about: 'cad:<agency>:<incident number>' for CAD, "
        "'crisis:<agency>:<request id>' for crisis events, 'report:<agency>:<report id>' "
        "for community reports.",
        "agency_id": "Agency owning the event (EIDO agencyIdentifier).",
        "incident_number": "CAD incident number, also for crisis events that name one.",
        "category": "Category from the taxonomy. 'proactive' is officer-initiated work "
        "(traffic stops, business checks, patrols): part of the picture, never a hotspot.",
        "mental_health": "True when the call type is a crisis type (APCO EDP, WELFARE, "
        "SUICTHRT, OD, INTOX and the equivalents); routes the event to the crisis audience.",
        "priority": "Normalised priority, 1 (most urgent) to 5.",
        "type_code": "Source call type code or category, as sent.",
        "type_text": "Source call type text, as sent.",
        "event_time": "When the step happened, UTC ISO-8601.",
        "received_time": "When the call or report was received, UTC ISO-8601.",
        "ingest_time": "When the source message reached its Kafka topic, UTC ISO-8601.",
        "source_timestamp_ms": "The same moment in epoch milliseconds (Kafka's timestamp), "
        "from which end-to-end latency is measured.",
        "latitude": "WGS-84 latitude, when known and inside the service area.",
        "longitude": "WGS-84 longitude.",
        "cell": "H3 cell of the location at the configured resolution (default 9).",
        "area_key": "Key of this event on the normalised topic: a coarse H3 cell (default "
        "resolution 6) or, without coordinates, 'district:<agency>:<district>'. Nearby "
        "events share a key and so a partition.",
        "address_text": "Block-level address.",
        "district": "District, division or borough.",
        "beat": "Beat or dispatch group.",
        "units": "Units or teams involved.",
        "status_text": "Source status text.",
        "disposition": "Disposition or outcome.",
        "reason_codes": "Crisis reason codes.",
        "community_source": "Channel of a community report.",
        "pii": "Personal data; withheld from every partner audience whose policy lacks it.",
        "source_topic": "Kafka topic the event was read from.",
        "source_partition": "Its partition.",
        "source_offset": "Its offset: with the topic and partition, the event's provenance.",
        "ghost": "True on the copy of an event near an area border that is sent to the "
        "neighbouring area, so that correlation there sees it; ghosts never open anything.",
    },
    enums={"source": SOURCES, "category": CATEGORIES},
)
class NormalisedEvent(faust.Record, serializer="orjson", include_metadata=False):
    event_id: str
    source: str
    kind: str
    subject_id: str
    agency_id: str
    category: str
    mental_health: bool
    priority: int
    event_time: str
    area_key: str
    schema_version: int = 1
    incident_number: Optional[str] = None
    type_code: Optional[str] = None
    type_text: Optional[str] = None
    received_time: Optional[str] = None
    ingest_time: Optional[str] = None
    source_timestamp_ms: Optional[int] = None
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    cell: Optional[str] = None
    address_text: Optional[str] = None
    district: Optional[str] = None
    beat: Optional[str] = None
    units: List[str] = []
    status_text: Optional[str] = None
    disposition: Optional[str] = None
    reason_codes: List[str] = []
    community_source: Optional[str] = None
    pii: Optional[Pii] = None
    source_topic: Optional[str] = None
    source_partition: Optional[int] = None
    source_offset: Optional[int] = None
    ghost: bool = False
