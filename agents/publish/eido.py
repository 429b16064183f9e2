"""Incident SA updates as NENA-STA-021 EIDO documents (JSON), and their STA-024 envelope (pure).

EIDO is what NG9-1-1 CAD systems and partner PSAPs exchange, so a partner subscribed to an
incident receives the EIDO of its latest version rather than our own update format. An EIDO
is a set of data components (incident, agency, location, emergency resources, dispatch,
notes, merges, links) that point at each other by `$id`; every component id here is
derived from the subject id, so the same component keeps its id from one version to the
next and a consumer replaces it in place.

The incident tracking identifier (the document's `$id`) is a hash of the subject id: stable,
within NENA's 32-character limit, and it does not reveal the agency's incident number to an
audience whose redacted update withholds it (the number is given as `internalIncidentId`
only when the state carries it).

Works on redacted updates: any state field may be missing and is then left out; a
generalised location (`location`: {cell, latitude, longitude}, or a bare cell) is sent as the
cell's hexagon rather than as a point, so it does not look exact.

Registry values (incident status, location type, agency type and role, resource type and
status) are strings the EIDO schema does not check; the closest entries are used and the
agency's own values are kept next to them in the `...InternalText` fields. The incident
type is an APCO common incident type code (`APCO_CODES`, checked against the standard's
list by the tests).
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from html import escape
from typing import Any, Mapping
from xml.sax.saxutils import quoteattr

import h3

from agents.ingest.times import as_utc

EIDO_VERSION = "1.0"
DEFAULT_ISSUER = "rtcc-streams"
"""issuingElementIdentification; a deployment passes its own element id (an FQDN)."""

# Component ids are uuid5 names in this namespace: stable for a subject and a role.
_ID_NAMESPACE = uuid.UUID("6c1f3c52-3f0e-5a43-9d0e-2d0f3b0c8e11")

# APCO ANS 2.103.2 common incident type codes (the EIDO Incident Type registry).
APCO_CODES = frozenset("""
911H 911OPN ABDOM ABDUCTF ABDUCTNF ABUSE ACCIND ADMIN AIR ALIEN ALLERGIC ALRBA ALRBOX
ALRBS ALRCO ALRCO2 ALRDEFIB ALRF ALRGAS ALRHEAT ALRKPAD ALRMED ALRNGAS ALRPANA ALRPANS
ALRPROPN ALRPULL ALRROBA ALRROBS ALRU ALRVEH ALRWTR ALS ANIMAL ASSAULT ASSIST ATL BACK
BARICADE BIO BITE BLDCLPSE BLEEDING BLS BOMB BRGCLPSE BURGLARY BURN CARDIAC CARJACK
CHEMICAL CHESPAIN CHOKE CITASST CIVDIS CIVIL CNTRFT CRIMPS CRIMTRAF CURFEW DEATH
DEATHNTF DIABETIC DISORD DISVEH DROWN DRUGPAR DRUGS DUI DVA DVNA EDP ELEC ELECHZD
ELUDING ENTRAP ESCAPE EXPLOS EXPOSURE EXTORT EYE FAIRC FALL FAPT FARSON FBRUSH FELEC
FFUEL FIGHT FIREWRKS FMARINE FORCENTR FOTHER FRAUD FREPORT FSMOKE FSTRU FTRAILER FTRAIN
FTRASH FTRUCK FUNK FVEH GASLEAK HARR HAZMAT HEADACHE HEMRG HOMICIDE HOSTAGE INDECENT
INFO INTERNET INTOX INVEST LARCENY LIQUOR MAJORINC MAYDAY MCI MISBOATR MISCON MVA MVAHR
MVAINJY MVAUNK NEGLECT NOISE OD ODOR OPEN ORDERV PANDEMIC PARKING PERFND PERMISS PERSUSP
PERUNCON PERWANT PHANDLE PREG PROPFND PROPLOST PROPSTLN PUBWKS PURSUIT RADIAT RECKDRV
REPO RESCUE RESIST RESP RESPARR ROBBERY RUNAWAY SAR SEIZURE SEXOFFNS SHOOT SHOPLIFT SICK
SMOKING STABBING STDBY STROKE SUBJSTP SUICIDE SUICTHRT SUSP TERROR THAZ THREATS TOW
TRAIN TRAINDRL TRANSFER TRAUMA TRAUMAP TRESPASS TROUBLE TRUANT TSTOP VANDAL VEHABND
VEHASST VEHLOCK VEHREC VEHSTLN VEHSUSP VICE WARRANT WATER WEAPON WELFARE WILDLIFE WIRES
XTRACATE
""".split())

# Words of an agency's call type (matched as word prefixes, in order: the first wins) to
# an APCO code, for call types that are not APCO codes themselves.
APCO_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("SHOTSPOTTER", "SHOOT"), ("SHOT", "SHOOT"), ("SHOOT", "SHOOT"), ("STAB", "STABBING"),
    ("CUTTING", "STABBING"), ("HOMICIDE", "HOMICIDE"), ("HOSTAGE", "HOSTAGE"),
    ("CARJACK", "CARJACK"), ("ROBBER", "ROBBERY"), ("BURGL", "BURGLARY"),
    ("SHOPLIFT", "SHOPLIFT"), ("THEFT", "LARCENY"), ("LARCENY", "LARCENY"),
    ("VANDAL", "VANDAL"), ("FIGHT", "FIGHT"), ("BATTERY", "ASSAULT"), ("ASSAULT", "ASSAULT"),
    ("WEAPON", "WEAPON"), ("GUN", "WEAPON"), ("THREAT", "THREATS"), ("SUICID", "SUICIDE"),
    ("OVERDOSE", "OD"), ("INTOX", "INTOX"), ("WELFARE", "WELFARE"), ("CRISIS", "EDP"),
    ("MENTAL", "EDP"), ("DRUG", "DRUGS"), ("NOISE", "NOISE"), ("TRESPASS", "TRESPASS"),
    ("HIT AND RUN", "MVAHR"), ("ACCIDENT", "MVA"), ("CRASH", "MVA"), ("COLLISION", "MVA"),
    ("TRAFFIC STOP", "TSTOP"), ("GAS LEAK", "GASLEAK"), ("ALARM", "ALRU"),
    ("STRUCTURE FIRE", "FSTRU"), ("VEHICLE FIRE", "FVEH"), ("FIRE", "FOTHER"),
    ("DISTURB", "DISORD"), ("DISORDERLY", "DISORD"), ("SUSPICIOUS", "SUSP"),
    ("WARRANT", "WARRANT"), ("MEDICAL", "SICK"),
)

# Our categories to an APCO code, when the call type says nothing more precise.
CATEGORY_CODES = {
    "violent": "ASSAULT", "property": "LARCENY", "traffic": "THAZ", "disorder": "DISORD",
    "medical": "SICK", "fire": "FOTHER", "mental_health": "EDP", "welfare": "WELFARE",
    "proactive": "INVEST", "other": "ADMIN",
}
UNKNOWN_TYPE = "TROUBLE"  # APCO "unknown trouble"

# Our lifecycle statuses to the EIDO Incident Status registry.
STATUS_REGISTRY = {
    "created": "Pending", "requested": "Pending", "updated": "Pending",
    "dispatched": "Dispatched", "en_route": "Enroute", "on_scene": "OnScene",
    "cleared": "Cleared", "closed": "Closed", "cancelled": "Cancelled",
}

_KEYWORDS = [(re.compile(r"\b" + re.escape(word)), code) for word, code in APCO_KEYWORDS]


# --- identifiers -------------------------------------------------------------------------------

def tracking_id(subject_id: str, issuer: str = DEFAULT_ISSUER) -> str:
    """The Incident Tracking Identifier of a subject: urn:emergency:uid:incidentid:<id>:<issuer>."""
    return f"urn:emergency:uid:incidentid:{_token(subject_id)}:{issuer}"


def _token(subject_id: str) -> str:
    return hashlib.sha256(subject_id.encode()).hexdigest()[:32]


def component_id(subject_id: str, role: str, issuer: str = DEFAULT_ISSUER) -> str:
    """A data component's `$id`, the same for the same subject and role in every version."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{issuer}|{subject_id}|{role}"))


def agency_id_of(agency_id: str) -> str:
    """An agency's component id: our agency ids are not domains, so they get a URN."""
    return f"urn:rtcc:agency:{agency_id}"


# --- mappings -----------------------------------------------------------------------------------

def incident_type_code(state: Mapping[str, Any]) -> str:
    """The APCO code of an incident: its own type when that is an APCO code, else from the
    words of its type, else from its category."""
    texts = [str(state[k]).upper() for k in ("type_code", "type_text") if state.get(k)]
    for text in texts:
        if text.strip() in APCO_CODES:
            return text.strip()
    for text in texts:
        for pattern, code in _KEYWORDS:
            if pattern.search(text):
                return code
    return CATEGORY_CODES.get(str(state.get("category")), UNKNOWN_TYPE)


def rfc3339(value: Any) -> str | None:
    """An ISO-8601 time as an RFC 3339 UTC date-time; None when missing or unreadable."""
    when = as_utc(value)
    if when is None:
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if when.microsecond else "%Y-%m-%dT%H:%M:%SZ")


# --- the document --------------------------------------------------------------------------------

def incident_to_eido(update: Mapping[str, Any], *, issuer: str = DEFAULT_ISSUER) -> dict[str, Any]:
    """The EIDO (EmergencyIncidentDataObjectType) of an incident SA update."""
    state = update.get("state") or {}
    subject = update["subject_id"]
    when = rfc3339(update.get("event_time")) or rfc3339(update.get("published_time"))
    if when is None:
        raise ValueError(f"update {update.get('update_id')!r} has no readable event_time")
    agency = _agency(state, issuer, when)
    ctx = _Ctx(subject, issuer, when, agency["$id"])

    doc: dict[str, Any] = {
        **ctx.prologue(tracking_id(subject, issuer)),
        "eidoVersion": EIDO_VERSION,
        "issuingElementIdentification": issuer,
    }
    location = _location(state, ctx)
    notes = _notes(update, state, ctx)
    resources = _resources(state, ctx)
    incident = _incident(state, ctx, location, notes)
    doc["incidentComponent"] = incident
    doc["agencyComponent"] = [agency]
    if location:
        doc["locationComponent"] = [location]
    if notes:
        doc["notesComponent"] = notes
    if resources:
        doc["emergencyResourceComponent"] = resources
        doc["dispatchComponent"] = [_dispatch(ctx, resources)]
    merges = _merges(state, ctx)
    if merges:
        doc["mergeComponent"] = merges
    links = _links(state, ctx)
    if links:
        doc["linkComponent"] = links
    return doc


def eido_notification(update: Mapping[str, Any], subscription_id: str, *,
                      issuer: str = DEFAULT_ISSUER) -> dict[str, Any]:
    """The NENA-STA-024 `event` message that delivers an update's EIDO to one subscription.

    The transaction id is derived from the subscription and the update id, so a redelivered
    update is recognisably the same transaction to the subscriber.
    """
    key = update.get("update_id") or f"{update['subject_id']}|{update.get('version')}"
    return {"event": {
        "subscriptionId": subscription_id,
        "transactionId": str(uuid.uuid5(_ID_NAMESPACE, f"{subscription_id}|{key}")),
        "notification": [incident_to_eido(update, issuer=issuer)],
    }}


class _Ctx:
    """What every component of one document shares: subject, issuer, time, owning agency."""

    def __init__(self, subject: str, issuer: str, when: str, agency_ref: str) -> None:
        self.subject, self.issuer, self.when, self.agency_ref = subject, issuer, when, agency_ref

    def id(self, role: str) -> str:
        return component_id(self.subject, role, self.issuer)

    def prologue(self, component_id: str, when: str | None = None) -> dict[str, Any]:
        return {"$id": component_id, "lastUpdateTimeStamp": when or self.when,
                "updatedByAgencyReference": {"$ref": self.agency_ref}}

    def component(self, role: str, when: str | None = None) -> dict[str, Any]:
        return self.prologue(self.id(role), when)


def _agency(state: Mapping[str, Any], issuer: str, when: str) -> dict[str, Any]:
    """The agency whose CAD owns the incident; the issuing RTCC stands in when the
    (redacted) state does not name it."""
    owner = state.get("agency_id")
    ref = agency_id_of(str(owner)) if owner else issuer
    return {"$id": ref, "lastUpdateTimeStamp": when, "updatedByAgencyReference": {"$ref": ref},
            "agencyRoleDescriptionRegistryText": ["CallReceiving"] if owner else ["Other"],
            "agencyType": ["psap"], "incidentOwningAgencyIndicator": bool(owner)}


def _incident(state: Mapping[str, Any], ctx: _Ctx, location: dict[str, Any] | None,
              notes: list[dict[str, Any]]) -> dict[str, Any]:
    incident = {**ctx.component("incident"),
                "incidentTypeCommonRegistryText": incident_type_code(state)}
    if state.get("type_code"):
        incident["incidentTypeInternalCode"] = str(state["type_code"])
    if state.get("type_text"):
        incident["incidentTypeInternalText"] = str(state["type_text"])
    status = state.get("status")
    if status in STATUS_REGISTRY:
        incident["incidentStatusCommonRegistryText"] = [STATUS_REGISTRY[status]]
    internal = [str(s) for s in (status, state.get("status_text")) if s]
    if internal:
        incident["incidentStatusInternalText"] = internal
    internal_id = state.get("incident_number") or state.get("subject_id")
    if internal_id:
        incident["internalIncidentId"] = str(internal_id)
    priority = state.get("priority")
    if isinstance(priority, int) and not isinstance(priority, bool):
        incident["incidentCommonPriorityNumber"] = priority
        incident["incidentPriorityInternalText"] = str(priority)
    group = state.get("beat") or state.get("district")
    if group:
        incident["beatOrDispatchGroupText"] = str(group)
    if location:
        incident["locationReference"] = [{"$ref": location["$id"]}]
    if notes:
        incident["notesReference"] = [{"$ref": note["$id"]} for note in notes]
    return incident


# --- location ------------------------------------------------------------------------------------

def _location(state: Mapping[str, Any], ctx: _Ctx) -> dict[str, Any] | None:
    """Exact coordinates as a point; a generalised location as its H3 cell's hexagon, so
    that it does not look exact; a bare address as a civic address. None when the state
    has no location at all.

    Generalised is a `location` object, a cell without coordinates, or coordinates that
    are their cell's centre (what redaction puts in their place).
    """
    general = state.get("location") if isinstance(state.get("location"), Mapping) else None
    source = general if general is not None else state
    point, cell = _point(source), _cell(source)
    approximate = general is not None or (
        cell is not None and (point is None or _at_centre(point, cell)))
    address = state.get("address_text")
    entity = f"pres:{_token(ctx.subject)}@{ctx.issuer}"
    described = [str(address)] if address else []
    if cell is not None and approximate:
        value = pidf_polygon(entity, cell, ctx.when)
        described.append(f"generalised to H3 cell {cell}")
    elif point is not None:
        value = pidf_point(entity, *point, ctx.when)
        if approximate:
            described.append("generalised")
    elif address:
        value = pidf_civic(entity, str(address), ctx.when)
    else:
        return None
    location = {**ctx.component("location"), "locationTypeDescriptionRegistryText": "Incident",
                "locationByValue": value}
    if described:
        location["locationDescriptionText"] = "; ".join(described)
    return location


def _at_centre(point: tuple[float, float], cell: str) -> bool:
    """Whether a point is its cell's centre (to ~2 m: redaction rounds it to 5 decimals)."""
    lat, lon = h3.cell_to_latlng(cell)
    return abs(lat - point[0]) < 2e-5 and abs(lon - point[1]) < 2e-5


_PIDF_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>'
              '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
              'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
              'xmlns:gml="http://www.opengis.net/gml" '
              'xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" entity={entity}>'
              '<tuple id="incident"><status><gp:geopriv><gp:location-info>')
_PIDF_TAIL = ('</gp:location-info><gp:usage-rules/></gp:geopriv></status>'
              '<timestamp>{when}</timestamp></tuple></presence>')
_SRS = 'srsName="urn:ogc:def:crs:EPSG::4326"'


def _pidf(entity: str, shape: str, when: str) -> str:
    return _PIDF_HEAD.format(entity=quoteattr(entity)) + shape + _PIDF_TAIL.format(when=when)


def pidf_point(entity: str, lat: float, lon: float, when: str) -> str:
    """A PIDF-LO (RFC 4119, RFC 5491) with a GML point."""
    return _pidf(entity, f'<gml:Point {_SRS}><gml:pos>{lat:.7f} {lon:.7f}</gml:pos></gml:Point>',
                 when)


def pidf_polygon(entity: str, cell: str, when: str) -> str:
    """A PIDF-LO whose location is an H3 cell's hexagon (a closed GML ring)."""
    ring = [f"{lat:.6f} {lon:.6f}" for lat, lon in h3.cell_to_boundary(cell)]
    pos = " ".join(ring + ring[:1])
    return _pidf(entity, f'<gml:Polygon {_SRS}><gml:exterior><gml:LinearRing><gml:posList>'
                         f'{pos}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>',
                 when)


_HOUSE_ROAD = re.compile(r"^\s*(\d+)\s+([^,/]+?)\s*(?:,|$)")


def pidf_civic(entity: str, address: str, when: str) -> str:
    """A PIDF-LO civic address (RFC 5139) from a one-line address: house number and road
    when it reads "<number> <road>[,...]", else the whole line as LOC."""
    match = _HOUSE_ROAD.match(address)
    if match:
        fields = f"<ca:HNO>{escape(match[1])}</ca:HNO><ca:RD>{escape(match[2])}</ca:RD>"
    else:
        fields = f"<ca:LOC>{escape(address.strip())}</ca:LOC>"
    return _pidf(entity, f'<ca:civicAddress xml:lang="en">{fields}</ca:civicAddress>', when)


def _point(source: Mapping[str, Any]) -> tuple[float, float] | None:
    lat, lon = _float(source.get("latitude")), _float(source.get("longitude"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def _cell(source: Mapping[str, Any]) -> str | None:
    cell = source.get("cell")
    return cell if isinstance(cell, str) and h3.is_valid_cell(cell) else None


# --- notes, resources, merges, links ---------------------------------------------------------

def _notes(update: Mapping[str, Any], state: Mapping[str, Any], ctx: _Ctx) -> list[dict[str, Any]]:
    """The update's reason and the disposition, as HTML notes, when the update carries them."""
    texts = [("reason", update.get("reason")),
             ("disposition", f"Disposition: {state['disposition']}" if state.get("disposition")
              else None)]
    return [{**ctx.component(f"note:{role}"), "notesActionComments": escape(str(text))}
            for role, text in texts if text]


def _resources(state: Mapping[str, Any], ctx: _Ctx) -> list[dict[str, Any]]:
    """One emergency resource per assigned unit. The state lists units, not their own
    statuses, so each is "Assigned" and its agents are unknown."""
    units = _strings(state.get("units"))
    times = state.get("times") if isinstance(state.get("times"), Mapping) else {}
    when = rfc3339(times.get("dispatched"))
    return [{**ctx.component(f"unit:{unit}", when), "emergencyResourceName": str(unit),
             "emergencyResourceTypeCommonRegistryText": "Unknown",
             "primaryUnitStatusRegistryText": "Assigned", "resourceAttributeRegistryText": [],
             "secondaryUnitStatusRegistryText": [], "agentReference": []}
            for unit in units]


def _dispatch(ctx: _Ctx, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The owning agency's dispatch of all the units, as of the first dispatch."""
    return {**ctx.component("dispatch", resources[0]["lastUpdateTimeStamp"]),
            "agencyReference": {"$ref": ctx.agency_ref},
            "emergencyResourceReference": [{"$ref": r["$id"]} for r in resources]}


def _merges(state: Mapping[str, Any], ctx: _Ctx) -> list[dict[str, Any]]:
    """Calls merged into this incident (it is REPLACING them) and the incident this one was
    merged into (it was REPLACED)."""
    pairs = [(str(s), "REPLACING") for s in _strings(state.get("calls_merged"))]
    if state.get("merged_into"):
        pairs.append((str(state["merged_into"]), "REPLACED"))
    return [{**ctx.component(f"merge:{other}"),
             "incidentTrackingIdentifier": tracking_id(other, ctx.issuer),
             "incidentMergeDirectionCode": code} for other, code in pairs]


def _links(state: Mapping[str, Any], ctx: _Ctx) -> list[dict[str, Any]]:
    """Crisis-team requests and community reports that concern this incident (RELATED)."""
    links = []
    crisis = state.get("crisis") if isinstance(state.get("crisis"), Mapping) else {}
    for other, record in crisis.items():
        links.append((str(other), _crisis_text(record)))
    for other in _strings(state.get("linked_report_ids")):
        links.append((other, "community report"))
    return [{**ctx.component(f"link:{other}"),
             "incidentTrackingIdentifier": tracking_id(other, ctx.issuer),
             "linkDirectionCode": "RELATED", "transactionReasonText": text}
            for other, text in links]


def _crisis_text(record: Any) -> str:
    """"crisis team MCT-1: dispatched" from a crisis record (or a bare status)."""
    if not isinstance(record, Mapping):
        return f"crisis team: {record}" if record else "crisis team"
    team = f"crisis team {record['team']}" if record.get("team") else "crisis team"
    details = [str(record[k]) for k in ("status", "outcome") if record.get(k)]
    return f"{team}: {', '.join(details)}" if details else team


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value if v] if isinstance(value, list) else []


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
