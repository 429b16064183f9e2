"""Contracts of the three source topics: what CAD, crisis-team and community adapters send.

Field names follow NENA-STA-021 EIDO where EIDO has the concept (in snake_case, with the
EIDO element named in each field's documentation), so that an EIDO-speaking partner maps
them without guessing. Times are ISO-8601 strings; a time without an offset is read in the
agency's configured time zone (see the service-area file).
"""

from __future__ import annotations

from typing import List, Optional

import faust

from schemas.contract import contract

CAD_EVENT_TYPES = (
    "created", "updated", "dispatched", "en_route", "on_scene", "cleared", "closed", "cancelled",
)
CRISIS_STATUSES = ("requested", "dispatched", "on_scene", "resolved", "transferred")
COMMUNITY_SOURCES = ("app", "neighbourhood_watch", "organisation", "311", "social")

_LOCATION_DOCS = {
    "latitude": "WGS-84 latitude (EIDO locationByValue, GML pos). Absent when not geocoded.",
    "longitude": "WGS-84 longitude (EIDO locationByValue).",
    "address_text": "Block-level address as the source gives it (EIDO locationDescriptionText).",
    "district": "Police district, division or borough.",
}


@contract(
    "cad-event", 1, "CAD event: one lifecycle step of a computer-aided-dispatch incident",
    docs={
        "schema_version": "Contract version; this file describes version 1.",
        "event_id": "Unique id of this event in the source CAD system.",
        "incident_number": "CAD incident number (EIDO incident internalIncidentId).",
        "agency_id": "Agency owning the incident (EIDO agencyIdentifier), e.g. 'MPD'.",
        "event_type": "Lifecycle step that this event reports.",
        "event_time": "When this lifecycle step happened.",
        "received_time": "When the call was received by the PSAP (EIDO call receivedTime).",
        "occurred_time": "When the incident itself occurred, if known.",
        "incident_type_code": "Call type code (EIDO incidentTypeInternalCode), e.g. 'EDP'.",
        "incident_type_text": "Call type text (EIDO incidentTypeInternalText).",
        "priority": "Priority as the agency states it (EIDO incidentPriorityInternalText).",
        **_LOCATION_DOCS,
        "beat": "Beat or dispatch group (EIDO beatOrDispatchGroupText).",
        "units": "Units assigned (EIDO emergencyResourceName).",
        "status_text": "Free status text of the CAD system.",
        "disposition": "Final disposition (EIDO dispositionComponent).",
        "caller_name": "PII: the caller's name. Never leaves the operator audience.",
        "caller_phone": "PII: the caller's callback number (EIDO callbackNumber).",
        "narrative": "PII: call-taker notes (EIDO notes). Never leaves the operator audience.",
    },
    enums={"event_type": CAD_EVENT_TYPES},
)
class CadEvent(faust.Record, serializer="orjson", include_metadata=False):
    event_id: str
    incident_number: str
    agency_id: str
    event_type: str
    event_time: str
    schema_version: int = 1
    received_time: Optional[str] = None
    occurred_time: Optional[str] = None
    incident_type_code: Optional[str] = None
    incident_type_text: Optional[str] = None
    priority: Optional[str] = None
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    address_text: Optional[str] = None
    district: Optional[str] = None
    beat: Optional[str] = None
    units: List[str] = []
    status_text: Optional[str] = None
    disposition: Optional[str] = None
    caller_name: Optional[str] = None
    caller_phone: Optional[str] = None
    narrative: Optional[str] = None


@contract(
    "crisis-event", 1, "Crisis-team event: one step of a mental-health crisis response",
    docs={
        "schema_version": "Contract version; this file describes version 1.",
        "event_id": "Unique id of this event in the crisis team's system.",
        "request_id": "Id of the crisis response request this event belongs to.",
        "agency_id": "Agency or programme running the crisis team.",
        "team_id": "Crisis team or unit (EIDO emergencyResourceName).",
        "status": "Step of the response that this event reports.",
        "event_time": "When this step happened.",
        "requested_time": "When the crisis team was requested.",
        "incident_number": "CAD incident number of the linked call, when known.",
        "incident_agency_id": "Agency of the linked CAD incident, when it differs.",
        "reason_codes": "Reasons for the request (e.g. 'suicide-related', 'EDP').",
        "outcome": "Outcome (e.g. 'apprehension', 'referred', 'no further action').",
        **_LOCATION_DOCS,
        "neighbourhood": "Neighbourhood name or code.",
        "client_name": "PII: the person in crisis. Never leaves the crisis audience.",
        "client_phone": "PII: contact number of the person in crisis.",
        "narrative": "PII: clinician notes.",
    },
    enums={"status": CRISIS_STATUSES},
)
class CrisisEvent(faust.Record, serializer="orjson", include_metadata=False):
    event_id: str
    request_id: str
    agency_id: str
    status: str
    event_time: str
    schema_version: int = 1
    team_id: Optional[str] = None
    requested_time: Optional[str] = None
    incident_number: Optional[str] = None
    incident_agency_id: Optional[str] = None
    reason_codes: List[str] = []
    outcome: Optional[str] = None
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    address_text: Optional[str] = None
    district: Optional[str] = None
    neighbourhood: Optional[str] = None
    client_name: Optional[str] = None
    client_phone: Optional[str] = None
    narrative: Optional[str] = None


@contract(
    "community-report", 1, "Community report from residents, watch groups or organisations",
    docs={
        "schema_version": "Contract version; this file describes version 1.",
        "report_id": "Unique id of the report at its source.",
        "source": "Channel the report came through.",
        "agency_id": "Organisation or city that relays the report, e.g. 'NYC311'.",
        "reporter_hash": "Salted hash of the reporter's identity; never the identity itself.",
        "category": "Category or complaint type as the source names it.",
        "subcategory": "Finer description (e.g. 311 descriptor).",
        "text": "PII: free text written by the reporter.",
        "reported_time": "When the report was made.",
        "occurred_time": "When the reported thing happened, if stated.",
        **_LOCATION_DOCS,
    },
    enums={"source": COMMUNITY_SOURCES},
)
class CommunityReport(faust.Record, serializer="orjson", include_metadata=False):
    report_id: str
    source: str
    agency_id: str
    category: str
    reported_time: str
    schema_version: int = 1
    reporter_hash: Optional[str] = None
    subcategory: Optional[str] = None
    text: Optional[str] = None
    occurred_time: Optional[str] = None
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    address_text: Optional[str] = None
    district: Optional[str] = None
