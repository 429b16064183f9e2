"""Row -> source messages, per a profile. Pure: no I/O, no clock, no randomness.

The replay reproduces an export, dirt included; it never decides what is valid, because
that is the pipeline's job and the dead-letter topic is where a replay shows it working.
So every row becomes at least one message (a lifecycle row can be folded into a call-level
step already sent for another row of the same call), and:

- an empty cell (or one of the profile's `null_values`) omits the field;
- a time that parses is sent as ISO-8601 with the profile zone's UTC offset;
- a time or number that does not parse is sent as the original string, so the pipeline
  dead-letters it (invalid_time, wrong_type) and the data's real dirt stays visible;
- each field that did not parse is reported per row, for the replay summary.

Event ids derive from the row only (its id column and the lifecycle step), so replaying a
file twice produces identical messages and the pipeline's de-duplication can be tested.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from functools import lru_cache
from typing import Any, Mapping

from streams.replay.profile import NO_DEFAULT, FieldSpec, Profile

EPOCH_FORMATS = {"epoch": 1.0, "epoch_ms": 1000.0}  # pseudo time formats for numeric times

_PAIR = r"\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*"
_LATLON = re.compile(rf"^\(?{_PAIR},{_PAIR}\)?$")  # "(37.74, -122.45)" or "37.74,-122.45"
_WKT = re.compile(rf"^POINT\s*\({_PAIR}\s{_PAIR}\)$", re.IGNORECASE)  # "POINT (lon lat)"


@dataclass(frozen=True)
class MappedEvent:
    """One message to produce, with what ordering and shifting need to know about it."""

    key: str
    message: dict[str, Any]
    times: Mapping[str, datetime]  # the message's time fields that parsed (aware datetimes)
    sort_time: float | None  # the `order_by` time as epoch seconds, None if it did not parse
    once_key: str | None = None  # call-level step: only the first event per once_key is sent
    at: float = 0.0  # effective replay time (epoch s), set by plan.order_rows


@dataclass(frozen=True)
class MappedRow:
    """The events of one row of the file and the fields of it that did not parse."""

    index: int  # 0-based position in the file
    events: tuple[MappedEvent, ...]
    unparseable: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def cell(row: Mapping[str, Any], column: str, null_values: frozenset[str]) -> Any:
    """A cell's value, stripped; None for empty, missing or null-marked cells."""
    value = row.get(column)
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return None if value == "" or value in null_values else value
    if isinstance(value, (list, dict)) and not value:
        return None
    return value


@lru_cache(maxsize=1 << 16)
def parse_time(text: str, formats: tuple[str, ...], zone: tzinfo) -> datetime | None:
    """An aware datetime, or None. Formats are tried in order, then ISO-8601; a naive
    result is local time in `zone` (in a DST gap or overlap, the earlier offset applies)."""
    for fmt in formats:
        if fmt in EPOCH_FORMATS:
            try:
                seconds = float(text) / EPOCH_FORMATS[fmt]
                return datetime.fromtimestamp(seconds, timezone.utc).astimezone(zone)
            except (ValueError, OverflowError, OSError):
                continue
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed


def iso(when: datetime, zone: tzinfo) -> str:
    """ISO-8601 in the profile's zone, e.g. 2018-05-01T00:10:28-05:00."""
    return when.astimezone(zone).isoformat()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def convert(value: Any, spec: FieldSpec, zone: tzinfo) -> tuple[Any, datetime | None, bool]:
    """(value to send, parsed time if a time, parsed ok). A failure keeps the original."""
    kind = spec.type
    if kind == "str":
        return _text(value), None, True
    if kind == "time":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = _text(value)
        if not isinstance(value, str):
            return value, None, False
        when = parse_time(value, spec.formats, zone)
        return (iso(when, zone), when, True) if when is not None else (value, None, False)
    if kind in ("float", "int"):
        if isinstance(value, bool):
            return value, None, False
        if kind == "float" and isinstance(value, (int, float)):
            return (float(value), None, True) if math.isfinite(value) else (value, None, False)
        if kind == "int" and isinstance(value, int):
            return value, None, True
        try:
            number = float(value) if kind == "float" else int(str(value), 10)
        except (TypeError, ValueError):
            return value, None, False
        if kind == "float" and not math.isfinite(number):  # orjson would send NaN as null
            return value, None, False
        return number, None, True
    # list
    if isinstance(value, list):
        return [_text(v) for v in value if v is not None and _text(v).strip()], None, True
    if spec.split:
        return [p.strip() for p in _text(value).split(spec.split) if p.strip()], None, True
    return [_text(value)], None, True


def parse_point(value: Any) -> tuple[float, float] | None:
    """(lat, lon) from "(lat, lon)", "lat,lon", WKT "POINT (lon lat)" or GeoJSON [lon, lat]."""
    if isinstance(value, list) and len(value) >= 2:
        try:
            return float(value[1]), float(value[0])
        except (TypeError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    m = _LATLON.match(value)
    if m:
        return float(m.group(1)), float(m.group(2))
    m = _WKT.match(value)
    if m:
        return float(m.group(2)), float(m.group(1))
    return None


def evaluate(spec: FieldSpec, row: Mapping[str, Any], profile: Profile
             ) -> tuple[Any, datetime | None, bool] | None:
    """(value, parsed time, ok) of one field for one row; None omits the field."""
    nulls = profile.null_values
    zone = profile.zone
    if spec.kind == "value":
        return None if spec.value is None else (spec.value, None, True)
    if spec.kind == "template":
        assert spec.template is not None
        values = {}
        for name in spec.template.names:
            value = cell(row, name, nulls)
            if value is None:  # a half-filled template is not a value: omit the field
                return None
            values[name] = _text(value)
        return convert(spec.template.render(values), spec, zone)
    value = next((v for v in (cell(row, c, nulls) for c in spec.columns) if v is not None), None)
    if spec.kind == "map":
        key = "" if value is None else _text(value)
        if key in spec.values:
            mapped = spec.values[key]
            return None if mapped is None else (mapped, None, True)
        if value is None:
            return None
        if spec.default is not NO_DEFAULT:
            return None if spec.default is None else (spec.default, None, True)
        return convert(value, spec, zone)
    if value is None:
        return None
    if spec.kind == "point":
        point = parse_point(value)
        if point is None or not all(math.isfinite(p) for p in point):
            return _text(value), None, False
        return point[spec.point_part], None, True
    return convert(value, spec, zone)


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


def _apply(message: dict[str, Any], times: dict[str, datetime], bad: dict[str, None],
           spec: FieldSpec, row: Mapping[str, Any], profile: Profile) -> None:
    result = evaluate(spec, row, profile)
    message.pop(spec.field, None)
    times.pop(spec.field, None)
    if result is None:
        return
    value, when, ok = result
    if value is None or value == [] or value == "":
        return
    message[spec.field] = value
    if when is not None:
        times[spec.field] = when
    if not ok:
        bad[spec.field] = None


def _event(profile: Profile, message: dict[str, Any], times: dict[str, datetime],
           once_key: str | None = None) -> MappedEvent:
    sort = times.get(profile.order_by)
    return MappedEvent(
        key=profile.key.render(message), message=message, times=times,
        sort_time=sort.timestamp() if sort is not None else None, once_key=once_key,
    )


def map_row(profile: Profile, row: Mapping[str, Any], index: int = 0) -> MappedRow:
    """The message(s) of one row: one per row, or one per present lifecycle step."""
    base: dict[str, Any] = {"schema_version": profile.schema_version, **profile.constants}
    times: dict[str, datetime] = {}
    bad: dict[str, None] = {}  # ordered set of unparseable fields
    for spec in profile.fields:
        _apply(base, times, bad, spec, row, profile)
    if not profile.lifecycle:
        return MappedRow(index, (_event(profile, base, times),), tuple(bad))

    step_field = profile.source.step_field
    time_field = profile.source.time_field
    id_field = profile.source.id_fields[0]
    row_id = base.get(id_field)
    events: list[MappedEvent] = []
    skipped: list[MappedEvent] = []
    for step in profile.lifecycle:
        message = dict(base)
        step_times = dict(times)
        for spec in step.fields:
            _apply(message, step_times, bad, spec, row, profile)
        if step.time is not None:
            _apply(message, step_times, bad, step.time, row, profile)
        message[step_field] = step.step  # type: ignore[index]
        once_key = None
        event_id = None if row_id is None else f"{row_id}:{step.step}"
        if step.once_per is not None:
            names = step.once_per.names
            parts = {n: cell(row, n, profile.null_values) for n in names}
            if all(v is not None for v in parts.values()):
                once = step.once_per.render({n: _text(v) for n, v in parts.items()})
                once_key = f"{step.step}\x00{once}"
                event_id = f"{once}:{step.step}"
        if event_id is not None:
            message[id_field] = event_id
        event = _event(profile, message, step_times, once_key)
        (events if time_field in message else skipped).append(event)
    if not events:  # no step has a time: still one message, which the pipeline will reject
        events = skipped[:1]
    return MappedRow(index, tuple(events), tuple(bad))
