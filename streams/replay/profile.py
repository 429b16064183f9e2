"""Replay profiles: how one data export maps onto one source contract, loaded from YAML.

A profile is configuration, never code, so that a new city's export is playable by writing
one YAML file (the format is documented in README.md beside this module). Everything that
can be checked without the data is checked here, at load time, with a message that names
the profile key at fault: a typo in a profile must stop the replay before the first message,
not surface as thousands of dead letters. Column names are checked against the file's header
when the file is opened (see `check_columns`).
"""

from __future__ import annotations

import difflib
import re
import typing
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from streams.topics import SOURCE_TOPICS, TopicSpec

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"

FORMATS = ("csv", "json", "jsonl")
TYPES = ("str", "float", "int", "list", "time")
NO_DEFAULT: Any = object()  # a map without `default:` passes unmatched values on as read


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the profile and the key at fault."""


# --------------------------------------------------------------------------------------------
# Sources: which topic and contract a profile feeds, and its special fields
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """What the replay needs to know about one source contract."""

    name: str  # "cad" | "crisis" | "community"
    contract_name: str  # key in schemas.CONTRACTS
    step_field: str | None  # field a lifecycle step sets (None: no lifecycle)
    time_field: str  # the field a lifecycle step's time goes to; default `order_by`
    id_fields: tuple[str, ...]  # identity fields: suffixed by `--repeat` so copies stay apart
    default_key: str  # Kafka key template when the profile gives none

    @property
    def topic(self) -> TopicSpec:
        return SOURCE_TOPICS[self.name]


SOURCES: dict[str, SourceSpec] = {
    "cad": SourceSpec("cad", "cad-event", "event_type", "event_time",
                      ("event_id", "incident_number"), "{agency_id}:{incident_number}"),
    "crisis": SourceSpec("crisis", "crisis-event", "status", "event_time",
                         ("event_id", "request_id", "incident_number"), "{agency_id}:{request_id}"),
    "community": SourceSpec("community", "community-report", None, "reported_time",
                            ("report_id",), "{agency_id}:{report_id}"),
}


@dataclass(frozen=True)
class ContractInfo:
    """Field types, required fields and enumerations of a contract, from its Faust Record."""

    types: Mapping[str, str]  # field -> one of TYPES
    required: frozenset[str]
    enums: Mapping[str, frozenset[str]]
    version: int  # the contract's schema_version, stamped on every message


def contract_info(source: SourceSpec) -> ContractInfo:
    """Read the contract once from the registered Record, so profile and pipeline agree."""
    from schemas import CONTRACTS  # imports faust: only when a profile is actually loaded
    from schemas.contract import record_defaults, record_fields

    contract = CONTRACTS[source.contract_name]
    defaults = record_defaults(contract.record)
    types: dict[str, str] = {}
    for name, tp in record_fields(contract.record).items():
        if name.endswith("_time"):
            types[name] = "time"
            continue
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (list, typing.List):
            types[name] = "list"
        elif typing.get_origin(tp) is typing.Union:
            types[name] = {str: "str", float: "float", int: "int"}.get(args[0], "str")
        else:
            types[name] = {str: "str", float: "float", int: "int"}.get(tp, "str")
    required = frozenset(
        n for n in types if (n not in defaults or n in contract.required) and n != "schema_version")
    return ContractInfo(types, required, {k: frozenset(v) for k, v in contract.enums.items()},
                        contract.version)


# --------------------------------------------------------------------------------------------
# Templates: "{Column Name}-{Other}" with {{ and }} for literal braces
# --------------------------------------------------------------------------------------------

_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]+)\}|[{}]")


@dataclass(frozen=True)
class Template:
    """A string with `{name}` placeholders. Names may hold spaces, colons, dots: any text
    but braces, because real column names do ("Neighborhood  District", "Call Number")."""

    text: str
    parts: tuple[tuple[bool, str], ...]  # (is_placeholder, literal text or name)

    @classmethod
    def parse(cls, text: str, where: str) -> "Template":
        parts: list[tuple[bool, str]] = []
        pos = 0
        for m in _TEMPLATE_TOKEN.finditer(text):
            if m.start() > pos:
                parts.append((False, text[pos:m.start()]))
            token = m.group(0)
            if token in ("{{", "}}"):
                parts.append((False, token[0]))
            elif m.group(1) is not None:
                parts.append((True, m.group(1)))
            else:
                raise ProfileError(f"{where}: unbalanced brace in template {text!r} "
                                   "(write {{ or }} for a literal brace)")
            pos = m.end()
        if pos < len(text):
            parts.append((False, text[pos:]))
        return cls(text, tuple(parts))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for is_name, name in self.parts if is_name))

    def render(self, values: Mapping[str, Any]) -> str:
        """Fill every placeholder; a missing or None value renders as ''."""
        out = []
        for is_name, text in self.parts:
            if is_name:
                value = values.get(text)
                out.append("" if value is None else str(value))
            else:
                out.append(text)
        return "".join(out)


# --------------------------------------------------------------------------------------------
# Field expressions: the mini-language of `fields:`
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """How one contract field is computed from a row.

    kind "column":   value of the first non-empty of `columns`, converted to `type`.
    kind "template": `template` filled from the row; omitted if any named column is empty.
    kind "map":      value of `columns` looked up in `values`, else `default`.
    kind "point":    part `point_part` (0 lat, 1 lon) of a "(lat, lon)" or WKT point.
    kind "value":    the fixed `value` (lifecycle step overrides); None omits the field.
    """

    field: str
    kind: str
    type: str
    columns: tuple[str, ...] = ()
    template: Template | None = None
    split: str | None = None
    formats: tuple[str, ...] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    default: Any = NO_DEFAULT
    point_part: int = 0
    value: Any = None


@dataclass(frozen=True)
class LifecycleStep:
    """One message per row (or per `once_per` key) for this step, when its time is present."""

    step: str  # value of the source's step field (event_type or status)
    time: FieldSpec | None  # None: the row's own time field from `fields`
    once_per: Template | None = None  # emit once per distinct rendering (call-level steps)
    fields: tuple[FieldSpec, ...] = ()  # overrides for this step; kind "value" None omits


@dataclass(frozen=True)
class Profile:
    """A validated replay profile. See README.md for the YAML form."""

    name: str
    description: str
    source: SourceSpec
    file: str
    format: str
    encoding: str
    timezone: str
    time_formats: tuple[str, ...]
    order_by: str
    key: Template
    constants: Mapping[str, Any]
    fields: tuple[FieldSpec, ...]
    lifecycle: tuple[LifecycleStep, ...] = ()
    null_values: frozenset[str] = frozenset()
    delimiter: str = ","
    records_key: str | None = None
    schema_version: int = 1
    path: Path | None = None  # where the profile was loaded from, for messages

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def field_names(self) -> frozenset[str]:
        """Every contract field a message of this profile can carry."""
        names = set(self.constants) | {f.field for f in self.fields}
        for step in self.lifecycle:
            names |= {f.field for f in step.fields}
            names.add(self.source.time_field)
            if self.source.step_field:
                names.add(self.source.step_field)
        return frozenset(names)

    def columns(self) -> dict[str, str]:
        """Every column the profile reads -> the first place that reads it (for messages)."""
        used: dict[str, str] = {}

        def add(spec: FieldSpec, where: str) -> None:
            for col in spec.columns:
                used.setdefault(col, f"{where}.{spec.field}")
            if spec.template is not None:
                for col in spec.template.names:
                    used.setdefault(col, f"{where}.{spec.field}")

        for spec in self.fields:
            add(spec, "fields")
        for step in self.lifecycle:
            if step.time is not None:
                add(step.time, f"lifecycle[{step.step}]")
            if step.once_per is not None:
                for col in step.once_per.names:
                    used.setdefault(col, f"lifecycle[{step.step}].once_per")
            for spec in step.fields:
                add(spec, f"lifecycle[{step.step}].fields")
        return used

    def data_path(self, shared_data_dir: Path) -> Path:
        """The data file: `file` is relative to RTCC_SHARED_DATA_DIR unless absolute."""
        path = Path(self.file).expanduser()
        return path if path.is_absolute() else shared_data_dir / path


def check_columns(profile: Profile, available: Iterable[str], file: Path | str) -> None:
    """Stop with a clear message when the profile reads a column the file does not have."""
    have = list(available)
    have_set = set(have)
    missing = {col: where for col, where in profile.columns().items() if col not in have_set}
    if not missing:
        return
    lines = [f"profile {profile.name!r}: {len(missing)} column(s) not in {file}:"]
    for col, where in missing.items():
        hint = difflib.get_close_matches(col, have, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        lines.append(f"  {col!r} (read by {where}){suggestion}")
    if have and have[0].startswith("\ufeff"):
        lines.append("  the file starts with a byte-order mark: set `encoding: utf-8-sig`")
    lines.append("  columns of the file: " + ", ".join(repr(c) for c in have))
    raise ProfileError("\n".join(lines))


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false are booleans, so that `Yes:`/`No:`/`ON:` stay the
    strings that exports contain (YAML 1.1 would turn a map of Yes/No into True/False)."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))

_TOP_KEYS = {
    "name", "description", "source", "file", "format", "encoding", "timezone", "time_formats",
    "order_by", "key", "constants", "fields", "lifecycle", "null_values", "delimiter",
    "records_key",
}
_EXPR_FORMS = ("column", "template", "map", "parse_point", "value")
_EXPR_OPTIONS = {"type", "split", "formats"}


def available_profiles() -> list[str]:
    """Names of the profiles shipped in streams/replay/profiles/."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def resolve(name_or_path: str) -> Path:
    """A shipped profile's name, or a path to a YAML file."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.exists() or "/" in name_or_path:
        if not candidate.is_file():
            raise ProfileError(f"profile file {name_or_path} not found")
        return candidate
    shipped = PROFILES_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise ProfileError(f"no profile {name_or_path!r}; shipped profiles: "
                           + ", ".join(available_profiles()))
    return shipped


def load(name_or_path: str | Path) -> Profile:
    """Load and validate a profile by name or path."""
    path = resolve(str(name_or_path))
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    return parse(data, path=path)


def _fail(where: str, msg: str) -> ProfileError:
    return ProfileError(f"{where}: {msg}")


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _fail(where, f"expected a string or a list of strings, got {value!r}")


def parse(data: Any, path: Path | None = None) -> Profile:
    """Validate a profile's YAML data (already parsed) into a Profile."""
    label = str(path) if path else "profile"
    if not isinstance(data, dict):
        raise ProfileError(f"{label}: a profile is a YAML mapping")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _fail(label, f"unknown key(s) {sorted(unknown)}; known: {sorted(_TOP_KEYS)}")
    name = data.get("name") or (path.stem if path else None)
    if not isinstance(name, str):
        raise _fail(label, "`name` is required")
    label = f"profile {name!r}"

    source_name = data.get("source")
    if source_name not in SOURCES:
        raise _fail(label, f"`source` must be one of {list(SOURCES)}, got {source_name!r}")
    source = SOURCES[source_name]
    info = contract_info(source)

    file = data.get("file")
    if not isinstance(file, str) or not file:
        raise _fail(label, "`file` (data file, relative to RTCC_SHARED_DATA_DIR) is required")
    fmt = data.get("format") or _format_of(file)
    if fmt not in FORMATS:
        raise _fail(label, f"`format` must be one of {list(FORMATS)}, got {fmt!r}")
    encoding = data.get("encoding", "utf-8")
    try:
        "".encode(encoding)
    except (LookupError, TypeError):
        raise _fail(label, f"unknown `encoding` {encoding!r}") from None
    tz = data.get("timezone")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, TypeError, ValueError):
        raise _fail(label, f"`timezone` must be an IANA zone like America/Chicago, got {tz!r}") \
            from None
    time_formats = _str_list(data["time_formats"], f"{label}.time_formats") \
        if data.get("time_formats") is not None else ()
    null_values = frozenset(_str_list(data["null_values"], f"{label}.null_values")) \
        if data.get("null_values") is not None else frozenset()
    delimiter = data.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise _fail(label, f"`delimiter` must be one character, got {delimiter!r}")
    records_key = data.get("records_key")
    if records_key is not None and (fmt != "json" or not isinstance(records_key, str)):
        raise _fail(label, "`records_key` (a dotted path) applies to format json only")

    constants = data.get("constants") or {}
    if not isinstance(constants, dict):
        raise _fail(label, "`constants` must map contract fields to values")
    for fname, value in constants.items():
        _check_field(fname, info, f"{label}.constants", source)
        if isinstance(value, (dict,)) or value is None:
            raise _fail(f"{label}.constants.{fname}", f"expected a plain value, got {value!r}")
        _check_enum(fname, value, info, f"{label}.constants.{fname}")

    raw_fields = data.get("fields") or {}
    if not isinstance(raw_fields, dict):
        raise _fail(label, "`fields` must map contract fields to columns or expressions")
    fields_ = []
    for fname, expr in raw_fields.items():
        _check_field(fname, info, f"{label}.fields", source)
        if fname in constants:
            raise _fail(f"{label}.fields.{fname}", "also set in `constants`: keep one")
        if expr is None:
            raise _fail(f"{label}.fields.{fname}", "needs a column name or an expression")
        fields_.append(_parse_expr(fname, expr, info, time_formats, f"{label}.fields.{fname}"))
    by_field = {f.field: f for f in fields_}

    lifecycle = _parse_lifecycle(data.get("lifecycle"), source, info, time_formats, constants,
                                 by_field, label)

    provided = set(constants) | set(by_field)
    if lifecycle:
        provided |= {source.step_field or "", source.time_field}
    missing = sorted(info.required - provided)
    if missing:
        raise _fail(label, f"required {source.contract_name} field(s) {missing} are not set by "
                    "`fields`, `constants` or `lifecycle`")

    order_by = data.get("order_by", source.time_field)
    if info.types.get(order_by) != "time" or order_by not in provided:
        raise _fail(f"{label}.order_by", f"must be a time field the profile sets, got {order_by!r}")

    key_text = data.get("key", source.default_key)
    if not isinstance(key_text, str):
        raise _fail(f"{label}.key",
                    "must be a template string like '{agency_id}:{incident_number}'")
    key = Template.parse(key_text, f"{label}.key")
    for ref in key.names:
        if ref not in info.types:
            raise _fail(f"{label}.key", f"{{{ref}}} is not a {source.contract_name} field "
                        "(the key is built from the message's fields, not from columns)")

    description = data.get("description", "")
    return Profile(
        name=name, description=str(description).strip(), source=source, file=file, format=fmt,
        encoding=encoding, timezone=tz, time_formats=time_formats, order_by=order_by, key=key,
        constants=dict(constants), fields=tuple(fields_), lifecycle=lifecycle,
        null_values=null_values, delimiter=delimiter, records_key=records_key,
        schema_version=info.version, path=path,
    )


def _format_of(file: str) -> str | None:
    suffix = Path(file).suffix.lower()
    return {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix)


def _check_field(fname: Any, info: ContractInfo, where: str, source: SourceSpec) -> None:
    if fname not in info.types or fname == "schema_version":
        hint = difflib.get_close_matches(str(fname), list(info.types), n=1)
        raise _fail(where, f"{fname!r} is not a field of {source.contract_name}"
                    + (f"; did you mean {hint[0]!r}?" if hint else ""))


def _check_enum(fname: str, value: Any, info: ContractInfo, where: str) -> None:
    allowed = info.enums.get(fname)
    if allowed is not None and value is not None and value not in allowed:
        raise _fail(where, f"{value!r} is not one of {sorted(allowed)}")


def _parse_expr(fname: str, expr: Any, info: ContractInfo, time_formats: tuple[str, ...],
                where: str) -> FieldSpec:
    """One `fields:` entry -> FieldSpec; the type defaults to the contract field's type."""
    ftype = info.types[fname]
    if isinstance(expr, str):
        return FieldSpec(fname, "column", ftype, columns=(expr,), formats=time_formats)
    if not isinstance(expr, dict):
        raise _fail(where, f"expected a column name or a mapping, got {expr!r}")
    forms = [k for k in _EXPR_FORMS if k in expr]
    if len(forms) != 1:
        raise _fail(where, f"give exactly one of {list(_EXPR_FORMS)}, got {sorted(expr)}")
    form = forms[0]
    extra = set(expr) - {form} - _EXPR_OPTIONS
    if extra:
        raise _fail(where, f"unknown key(s) {sorted(extra)} (options: {sorted(_EXPR_OPTIONS)})")
    ftype = expr.get("type", ftype)
    if ftype not in TYPES:
        raise _fail(where, f"`type` must be one of {list(TYPES)}, got {ftype!r}")
    split = expr.get("split")
    if split is not None and (not isinstance(split, str) or not split):
        raise _fail(where, "`split` must be a non-empty string")
    formats = _str_list(expr["formats"], f"{where}.formats") if "formats" in expr else time_formats

    if form == "column":
        return FieldSpec(fname, "column", ftype, columns=_str_list(expr["column"], where),
                         split=split, formats=formats)
    if form == "template":
        if not isinstance(expr["template"], str):
            raise _fail(where, "`template` must be a string (quote it in YAML: it starts with {)")
        template = Template.parse(expr["template"], where)
        if not template.names:
            raise _fail(where, f"template {template.text!r} names no column")
        return FieldSpec(fname, "template", ftype, template=template, split=split,
                         formats=formats)
    if form == "map":
        spec = expr["map"]
        if not isinstance(spec, dict) or "column" not in spec or "values" not in spec \
                or not isinstance(spec["values"], dict) \
                or set(spec) - {"column", "values", "default"}:
            raise _fail(where, "`map` takes {column: X, values: {from: to, ...}, default: ...}")
        values = {str(k): v for k, v in spec["values"].items()}
        for v in values.values():
            _check_enum(fname, v, info, f"{where}.map.values")
        default = spec.get("default", NO_DEFAULT)
        if default is not NO_DEFAULT:
            _check_enum(fname, default, info, f"{where}.map.default")
        return FieldSpec(fname, "map", ftype, columns=_str_list(spec["column"], where),
                         values=values, default=default, split=split, formats=formats)
    if form == "parse_point":
        if fname not in ("latitude", "longitude"):
            raise _fail(where, "`parse_point` sets latitude or longitude only")
        column = expr["parse_point"]
        if not isinstance(column, str):
            raise _fail(where, "`parse_point` takes one column name")
        return FieldSpec(fname, "point", "float", columns=(column,),
                         point_part=0 if fname == "latitude" else 1)
    value = expr["value"]
    _check_enum(fname, value, info, where)
    return FieldSpec(fname, "value", ftype, value=value)


def _parse_lifecycle(raw: Any, source: SourceSpec, info: ContractInfo,
                     time_formats: tuple[str, ...], constants: Mapping[str, Any],
                     by_field: Mapping[str, FieldSpec], label: str) -> tuple[LifecycleStep, ...]:
    if raw is None:
        return ()
    where = f"{label}.lifecycle"
    if source.step_field is None:
        raise _fail(where, f"source {source.name!r} has no lifecycle (one message per row)")
    if not isinstance(raw, list) or not raw:
        raise _fail(where, "must be a list of steps")
    for f in (source.step_field, source.time_field):
        if f in constants:
            raise _fail(where, f"{f!r} is set by each step: remove it from `constants`")
    if source.step_field in by_field:
        raise _fail(where, f"{source.step_field!r} is set by each step: remove it from `fields`")
    steps = []
    for i, entry in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise _fail(here, "a step is a mapping like {event_type: dispatched, time_column: X}")
        extra = set(entry) - {source.step_field, "time_column", "time", "once_per", "fields"}
        if extra:
            raise _fail(here, f"unknown key(s) {sorted(extra)}; a step takes "
                        f"{source.step_field}, time_column or time, once_per, fields")
        step = entry.get(source.step_field)
        if not isinstance(step, str):
            raise _fail(here, f"`{source.step_field}` (the step) is required")
        _check_enum(source.step_field, step, info, f"{here}.{source.step_field}")
        if "time_column" in entry and "time" in entry:
            raise _fail(here, "give `time_column` or `time`, not both")
        time: FieldSpec | None = None
        if "time_column" in entry:
            time = _parse_expr(source.time_field, entry["time_column"], info, time_formats, here)
            if time.kind != "column":
                raise _fail(here, "`time_column` takes a column name; use `time:` for expressions")
        elif "time" in entry:
            time = _parse_expr(source.time_field, entry["time"], info, time_formats, here)
        elif source.time_field not in by_field:
            raise _fail(here, f"no time: give `time_column` or set `fields.{source.time_field}`")
        once = None
        if entry.get("once_per") is not None:
            if not isinstance(entry["once_per"], str):
                raise _fail(here, "`once_per` is a template of columns, e.g. '{Call Number}'")
            once = Template.parse(entry["once_per"], f"{here}.once_per")
        overrides = []
        for fname, expr in (entry.get("fields") or {}).items():
            _check_field(fname, info, f"{here}.fields", source)
            if fname in (source.step_field, source.time_field):
                raise _fail(f"{here}.fields", f"{fname!r} is set by the step itself")
            if expr is None:  # `units: null`: this step does not carry the field
                overrides.append(FieldSpec(fname, "value", info.types[fname], value=None))
            else:
                overrides.append(_parse_expr(fname, expr, info, time_formats,
                                             f"{here}.fields.{fname}"))
        steps.append(LifecycleStep(step, time, once, tuple(overrides)))
    return tuple(steps)
