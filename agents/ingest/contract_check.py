"""Check a decoded source message against its contract (types, required fields, enums).

The rules are derived once from the Faust Record and the contract's enumerations, so the
validator, the Records and the published JSON Schema cannot disagree. Ids may arrive as
numbers (many CAD exports have numeric incident numbers) and are read as strings; every
other type mismatch is refused.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Any

from agents.ingest.rejection import Rejected
from schemas.contract import Contract, record_defaults, record_fields

# Free-text fields may be long; everything else is a code, a name or an address.
FREE_TEXT_FIELDS = frozenset({"narrative", "text"})
MAX_TEXT_CHARS = 8_192
MAX_FIELD_CHARS = 512
MAX_LIST_ITEMS = 64


@dataclass(frozen=True)
class FieldRule:
    name: str
    kind: str  # "str", "float", "int", "list_str"
    required: bool
    enum: frozenset[str] | None
    max_chars: int


def _kind(tp: Any) -> tuple[str, bool]:
    """(kind, optional) of an annotated Record field type."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return _kind(inner[0])[0], True
    if typing.get_origin(tp) in (list, typing.List):
        return "list_str", False
    return {str: "str", float: "float", int: "int", bool: "bool"}[tp], False


def rules_for(contract: Contract) -> tuple[FieldRule, ...]:
    defaults = record_defaults(contract.record)
    rules = []
    for name, tp in record_fields(contract.record).items():
        if name == "schema_version":
            continue
        kind, _ = _kind(tp)
        enum = contract.enums.get(name)
        rules.append(FieldRule(
            name=name,
            kind=kind,
            required=name not in defaults or name in contract.required,
            enum=frozenset(enum) if enum else None,
            max_chars=MAX_TEXT_CHARS if name in FREE_TEXT_FIELDS else MAX_FIELD_CHARS,
        ))
    return tuple(rules)


def _as_str(rule: FieldRule, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Rejected("wrong_type", rule.name, f"expected string, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > rule.max_chars:
        raise Rejected("oversized_field", rule.name, f"{len(text)} chars > {rule.max_chars}")
    return text


def _coerce(rule: FieldRule, value: Any) -> Any:
    if rule.kind == "str":
        return _as_str(rule, value)
    if rule.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Rejected("wrong_type", rule.name, f"expected number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise Rejected("invalid_coordinates", rule.name, "not a finite number")
        return float(value)
    if rule.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise Rejected("wrong_type", rule.name, f"expected integer, got {type(value).__name__}")
        return value
    if rule.kind == "list_str":
        if not isinstance(value, list):
            raise Rejected("wrong_type", rule.name, f"expected list, got {type(value).__name__}")
        if len(value) > MAX_LIST_ITEMS:
            raise Rejected("oversized_field", rule.name, f"{len(value)} items > {MAX_LIST_ITEMS}")
        return [_as_str(rule, item) for item in value]
    raise AssertionError(rule.kind)


def check(message: dict[str, Any], rules: tuple[FieldRule, ...], version: int) -> dict[str, Any]:
    """The message's known fields, typed; raises Rejected on the first violation."""
    declared = message.get("schema_version", version)
    if declared != version or isinstance(declared, bool):  # true == 1 in Python, not in JSON
        raise Rejected("unsupported_schema_version", "schema_version", f"got {declared!r}")
    clean: dict[str, Any] = {}
    for rule in rules:
        value = message.get(rule.name)
        if value is None or value == "" or value == []:
            if rule.required:
                raise Rejected("missing_field", rule.name)
            continue
        value = _coerce(rule, value)
        if value == "":
            if rule.required:
                raise Rejected("missing_field", rule.name, "blank")
            continue
        if rule.enum is not None and value not in rule.enum:
            raise Rejected("unknown_value", rule.name, f"{str(value)[:40]!r} not in contract")
        clean[rule.name] = value
    return clean
