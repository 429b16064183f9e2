"""Machinery shared by the event contracts: a registry of documented Faust Records.

Each contract is a Faust Record (what the code uses) plus documentation and enumerations
kept beside it, from which `schemas.jsonschema` renders the JSON Schema files that partners
read. A test keeps the committed files equal to the rendering, so the two never drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

import faust

R = TypeVar("R", bound=type[faust.Record])


@dataclass(frozen=True)
class Contract:
    name: str  # file stem of the JSON Schema, e.g. "cad-event"
    version: int  # bumped on any incompatible change; carried in `schema_version`
    title: str
    record: type[faust.Record]
    docs: Mapping[str, str] = field(default_factory=dict)
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Fields that are required although their Record type carries a default.
    required: tuple[str, ...] = ()

    @property
    def schema_id(self) -> str:
        return f"https://rtcc-streams.org/schemas/{self.name}/v{self.version}.json"


CONTRACTS: dict[str, Contract] = {}


def contract(
    name: str,
    version: int,
    title: str,
    docs: Mapping[str, str] | None = None,
    enums: Mapping[str, tuple[str, ...]] | None = None,
    required: tuple[str, ...] = (),
) -> Callable[[R], R]:
    """Register a Record as a published contract."""

    def register(record: R) -> R:
        CONTRACTS[name] = Contract(
            name, version, title, record, dict(docs or {}), dict(enums or {}), required
        )
        return record

    return register


def record_fields(record: type[faust.Record]) -> dict[str, Any]:
    """Field name -> annotated type, in declaration order."""
    return dict(record._options.fields)


def record_defaults(record: type[faust.Record]) -> Mapping[str, Any]:
    return record._options.defaults
