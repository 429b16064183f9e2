"""Where the serving layer keeps each audience's picture in Redis, and how an update
changes it (pure: the sink executes these plans, the gateway reads the keys).

Per audience `a` (under the deployment's namespace):
  a:incident, a:hotspot, a:cluster   hash subject id -> latest payload (JSON), active only
  a:geo                              geo set "<kind>|<subject id>" -> location, active only
  a:stream                           Redis Stream of every delivered payload (field "u"),
                                     bounded; its entry ids are the SSE event ids
  a:offsets                          hash audience-topic partition -> last applied offset
  a:counts                           public aggregates: hash "<district>|<cell>|<category>" -> n
  a:counted                          hash opaque incident id -> its counts key while open
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import orjson

# Update kinds after which a subject is no longer on the live picture.
# ("merged" is also the kind of the surviving incident's update: only `merged_into` ends one.)
ENDING_KINDS = ("closed", "withdrawn", "hotspot_closed", "cluster_closed")
ENDING_STATUSES = ("closed", "cancelled", "cleared")


@dataclass(frozen=True)
class Keys:
    namespace: str
    audience: str

    def _k(self, name: str) -> str:
        return f"{self.namespace}{self.audience}:{name}"

    def subjects(self, kind: str) -> str:
        return self._k(kind)

    @property
    def geo(self) -> str:
        return self._k("geo")

    @property
    def stream(self) -> str:
        return self._k("stream")

    @property
    def offsets(self) -> str:
        return self._k("offsets")

    @property
    def counts(self) -> str:
        return self._k("counts")

    @property
    def counted(self) -> str:
        return self._k("counted")

    def all(self) -> list[str]:
        return [self.subjects("incident"), self.subjects("hotspot"), self.subjects("cluster"),
                self.geo, self.stream, self.offsets, self.counts, self.counted]


@dataclass(frozen=True)
class Op:
    """One payload's effect on Redis, as flat arguments for the sink's Lua script."""

    offset: int
    action: str  # upsert | remove | count
    kind: str
    member: str  # subject id
    payload: bytes
    lon: str = ""
    lat: str = ""
    count_key: str = ""  # count: where the incident counts now; "" when it no longer does

    def args(self) -> list[Any]:
        return [self.offset, self.action, self.kind, self.member, self.payload, self.lon,
                self.lat, self.count_key]


def is_ending(payload: Mapping[str, Any]) -> bool:
    state = payload.get("state") or {}
    return payload["kind"] in ENDING_KINDS or state.get("status") in ENDING_STATUSES \
        or bool(state.get("merged_into")) or state.get("open") is False


def plan(offset: int, payload: Mapping[str, Any]) -> Op:
    """What applying `payload` (read at `offset`) does to its audience's keys."""
    kind, member = payload["subject_kind"], payload["subject_id"]
    raw = orjson.dumps(payload)
    state = payload.get("state") or {}
    if payload.get("aggregate"):
        key = "" if is_ending(payload) else "|".join(
            str(state.get(k) or "") for k in ("district", "cell", "category"))
        return Op(offset, "count", kind, member, raw, count_key=key)
    if is_ending(payload):
        return Op(offset, "remove", kind, member, raw)
    lat, lon = state.get("latitude"), state.get("longitude")
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)) \
            and -85.05 < lat < 85.05 and -180 <= lon <= 180:
        return Op(offset, "upsert", kind, member, raw, lon=repr(float(lon)), lat=repr(float(lat)))
    return Op(offset, "upsert", kind, member, raw)
