"""Render the registered contracts as JSON Schema (draft 2020-12) files for partners.

`python -m schemas.jsonschema` rewrites schemas/json/; tests/unit/schemas checks that the
committed files equal the rendering and that real events validate against them.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

import faust
import orjson

import schemas  # noqa: F401  (registers every contract)
from schemas.contract import CONTRACTS, Contract, record_defaults, record_fields

JSON_DIR = Path(__file__).resolve().parent / "json"
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _contract_of(record: type) -> Contract:
    for c in CONTRACTS.values():
        if c.record is record:
            return c
    raise KeyError(f"{record.__name__} is not a registered contract")


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            schema = _type_schema(inner[0])
            if "$ref" in schema:
                return {"anyOf": [schema, {"type": "null"}]}
            return {**schema, "type": [schema["type"], "null"]}
        raise TypeError(f"unsupported union {tp}")
    if origin in (list, typing.List):
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin in (dict, typing.Dict) or tp in (dict, typing.Dict):
        return {"type": "object"}
    if isinstance(tp, type) and issubclass(tp, faust.Record):
        return {"$ref": _contract_of(tp).schema_id}
    if tp in _SCALARS:
        # JSON has one number type: an integer is also a valid "number".
        return {"type": _SCALARS[tp]}
    raise TypeError(f"unsupported field type {tp}")


def render(c: Contract) -> dict[str, Any]:
    defaults = record_defaults(c.record)
    properties: dict[str, Any] = {}
    for name, tp in record_fields(c.record).items():
        prop = _type_schema(tp)
        if name in c.enums:
            prop["enum"] = list(c.enums[name])
        if name == "schema_version":
            prop = {"type": "integer", "const": c.version}
        elif name in defaults and defaults[name] not in (None, [], {}):
            prop["default"] = defaults[name]
        if name in c.docs:
            prop["description"] = c.docs[name]
        properties[name] = prop
    required = [n for n in properties if n not in defaults or n in c.required]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": c.schema_id,
        "title": c.title,
        "type": "object",
        "properties": properties,
        "required": required,
        # Producers may add fields; consumers must ignore what they do not know.
        "additionalProperties": True,
    }


def rendered_files() -> dict[str, bytes]:
    return {
        f"{c.name}.v{c.version}.schema.json": orjson.dumps(
            render(c), option=orjson.OPT_INDENT_2
        )
        + b"\n"
        for c in CONTRACTS.values()
    }


def main() -> int:
    JSON_DIR.mkdir(exist_ok=True)
    for name, content in rendered_files().items():
        (JSON_DIR / name).write_bytes(content)
        print(f"wrote schemas/json/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
