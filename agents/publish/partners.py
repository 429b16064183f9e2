"""Partners: API keys, the scope of a subscription, and its rate limit (pure).

A partner's audience and filters come from the registry, never from a request: the gateway
looks the partner up by the id in its key and applies these functions to every update.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

KEY_PREFIX = "rtcc"


def new_key(partner_id: str) -> str:
    """'rtcc.<partner id>.<256 random bits>': the id finds the record, the rest proves it."""
    return f"{KEY_PREFIX}.{partner_id}.{secrets.token_urlsafe(32)}"


def key_hash(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def partner_id_of(key: str) -> str | None:
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1]:
        return None
    return parts[1]


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(key), stored_hash)


def point_in_polygon(lon: float, lat: float, ring: Sequence[Sequence[float]]) -> bool:
    """Even-odd rule over a ring of [lon, lat] points (closed or not)."""
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i][0], ring[i][1]
        x2, y2 = ring[(i + 1) % n][0], ring[(i + 1) % n][1]
        if (y1 > lat) != (y2 > lat):
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < x_cross:
                inside = not inside
    return inside


@dataclass(frozen=True)
class Scope:
    """The filters of a partner's subscription, from its registry record."""

    districts: frozenset[str] = frozenset()
    bbox: tuple[float, float, float, float] | None = None
    polygon: tuple[tuple[float, float], ...] | None = None
    categories: frozenset[str] = frozenset()
    max_priority: int | None = None

    @classmethod
    def of(cls, partner: Mapping[str, Any]) -> "Scope":
        bbox = partner.get("bbox")
        polygon = partner.get("polygon")
        return cls(
            districts=frozenset(str(d) for d in partner.get("districts") or ()),
            bbox=tuple(float(v) for v in bbox) if bbox else None,  # type: ignore[arg-type]
            polygon=tuple((float(p[0]), float(p[1])) for p in polygon) if polygon else None,
            categories=frozenset(partner.get("categories") or ()),
            max_priority=partner.get("max_priority"),
        )

    @property
    def spatial(self) -> bool:
        return bool(self.districts or self.bbox or self.polygon)

    def admits(self, state: Mapping[str, Any] | None) -> bool:
        """Whether a subject with this (redacted) state is within the scope. A subject that
        cannot be placed is outside any spatial filter: a filter never leaks by default."""
        if state is None:
            return False
        if self.categories and state.get("category") not in self.categories:
            return False
        priority = state.get("priority")
        if self.max_priority is not None and priority is not None \
                and priority > self.max_priority:
            return False
        if not self.spatial:
            return True
        lat, lon = state.get("latitude"), state.get("longitude")
        located = isinstance(lat, (int, float)) and isinstance(lon, (int, float))
        if self.districts and str(state.get("district")) in self.districts:
            return True
        if self.bbox and located:
            min_lon, min_lat, max_lon, max_lat = self.bbox
            if min_lon <= lon <= max_lon and min_lat <= lat <= max_lat:  # type: ignore[operator]
                return True
        if self.polygon and located and point_in_polygon(lon, lat, self.polygon):  # type: ignore[arg-type]
            return True
        return False


@dataclass
class Coalescer:
    """A partner's minimum interval between two updates of one subject (STA-024 maxRate).

    An update that comes too soon is held, and replaced by any newer one of the same
    subject; the newest is released when the interval has passed. Nothing is dropped that
    is not superseded by a later state of the same subject.
    """

    min_interval_s: float
    last_sent: dict[str, float] = field(default_factory=dict)
    held: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    superseded: int = 0

    def offer(self, subject_id: str, item: tuple[Any, ...], now: float) -> list[tuple[Any, ...]]:
        """Items to send now for this arrival (0 or 1)."""
        if self.min_interval_s <= 0:
            return [item]
        last = self.last_sent.get(subject_id)
        if last is None or now - last >= self.min_interval_s:
            if subject_id in self.held:
                self.held.pop(subject_id)
                self.superseded += 1
            self.last_sent[subject_id] = now
            return [item]
        if subject_id in self.held:
            self.superseded += 1
        self.held[subject_id] = item
        return []

    def due(self, now: float) -> list[tuple[Any, ...]]:
        """Held items whose interval has passed, oldest subject first."""
        out = []
        for subject_id in list(self.held):
            if now - self.last_sent.get(subject_id, 0.0) >= self.min_interval_s:
                out.append(self.held.pop(subject_id))
                self.last_sent[subject_id] = now
        return out

    def next_due(self) -> float | None:
        if not self.held:
            return None
        return min(self.last_sent[s] for s in self.held) + self.min_interval_s

    def forget_older_than(self, horizon: float) -> None:
        """Bound memory: subjects quiet for longer than the interval need no entry."""
        for subject_id in [s for s, t in self.last_sent.items()
                           if t < horizon and s not in self.held]:
            del self.last_sent[subject_id]
