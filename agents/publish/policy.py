"""Audience policies: what each kind of partner may see, loaded from one YAML file.

The file (streams/defaults/audiences.yaml, or RTCC_AUDIENCES_FILE) is the single statement
of the sharing rules; agents/publish/redact.py is the single place that applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

SUBJECT_KINDS = ("incident", "hotspot", "cluster")
LOCATIONS = ("exact", "generalised")


@dataclass(frozen=True)
class Sensitivity:
    """What makes a call sensitive: withheld from community and public partners."""

    categories: frozenset[str] = frozenset()
    mental_health_flag: bool = True
    type_keywords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        words = "|".join(re.escape(k.upper()) for k in self.type_keywords) or r"(?!x)x"
        object.__setattr__(self, "_pattern", re.compile(rf"(?:^|[^A-Z])(?:{words})"))

    def matches(self, state: Mapping[str, Any]) -> bool:
        if state.get("category") in self.categories:
            return True
        if self.mental_health_flag and state.get("mental_health"):
            return True
        if state.get("crisis"):
            return True  # a crisis team is involved: a mental-health call by definition
        text = " ".join(str(state.get(k) or "") for k in ("type_code", "type_text")).upper()
        return bool(text.strip()) and bool(self._pattern.search(text))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AudiencePolicy:
    name: str
    subjects: frozenset[str]
    fields: Mapping[str, tuple[str, ...]]
    location: str = "exact"
    location_resolution: int = 8
    sensitive: str = "show"  # show | withhold
    require_flag: str | None = None
    aggregate: bool = False
    delay_s: float = 0.0
    reason: bool = False

    def fields_of(self, subject_kind: str) -> tuple[str, ...]:
        return self.fields.get(subject_kind, ())


@dataclass(frozen=True)
class Policies:
    audiences: Mapping[str, AudiencePolicy]
    sensitivity: Sensitivity = field(default_factory=Sensitivity)

    def __getitem__(self, name: str) -> AudiencePolicy:
        return self.audiences[name]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.audiences.values())

    @classmethod
    def load(cls, path: Path) -> "Policies":
        return cls.parse(yaml.safe_load(path.read_text()))

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> "Policies":
        sens = doc.get("sensitive") or {}
        sensitivity = Sensitivity(
            categories=frozenset(sens.get("categories") or ()),
            mental_health_flag=bool(sens.get("mental_health_flag", True)),
            type_keywords=tuple(sens.get("type_keywords") or ()),
        )
        audiences = {}
        for name, raw in (doc.get("audiences") or {}).items():
            audiences[name] = _audience(name, raw)
        if not audiences:
            raise ValueError("audience policy names no audiences")
        return cls(audiences=audiences, sensitivity=sensitivity)


def _audience(name: str, raw: Mapping[str, Any]) -> AudiencePolicy:
    subjects = frozenset(raw.get("subjects") or ())
    unknown = subjects - set(SUBJECT_KINDS)
    if unknown:
        raise ValueError(f"audience {name}: unknown subject kinds {sorted(unknown)}")
    location = raw.get("location", "exact")
    if location not in LOCATIONS:
        raise ValueError(f"audience {name}: location must be one of {LOCATIONS}")
    sensitive = raw.get("sensitive", "withhold")
    if sensitive not in ("show", "withhold"):
        raise ValueError(f"audience {name}: sensitive must be show or withhold")
    fields = {kind: tuple(names or ()) for kind, names in (raw.get("fields") or {}).items()}
    missing = [kind for kind in subjects if not fields.get(kind)]
    if missing:
        raise ValueError(f"audience {name}: no fields named for {missing}")
    return AudiencePolicy(
        name=name, subjects=subjects, fields=fields, location=location,
        location_resolution=int(raw.get("location_resolution", 8)), sensitive=sensitive,
        require_flag=raw.get("require_flag"), aggregate=bool(raw.get("aggregate", False)),
        delay_s=float(raw.get("delay_s", 0.0)), reason=bool(raw.get("reason", False)),
    )
