"""Hostile and broken source messages for the fuzz tests: real messages, mutated.

Every case starts from a real message (tests/samples.py and the first rows of the four data
sets of ../shared/data, mapped by their replay profiles) that ingest accepts, and applies one
mutation class: truncated JSON, non-UTF-8 bytes, other encodings, wrong types, huge strings,
NaN and infinite coordinates, dates in 1900 and 2100, unknown enum values, duplicated keys,
oversized messages, deep nesting, and benign re-encodings that must change nothing. A case
applying one mutation to a good message knows its outcome (accepted, or the dead-letter
reason and field); stacked mutations (`mixed`) only promise the general property.

The engine draws its choices from a `Draw`: `RandomDraw` (a seeded `random.Random`: thousands
of cases a second, the same cases on every run) or `HypothesisDraw` (a Hypothesis `data`
object, so that a failing case shrinks to a minimal one). Shared by the unit fuzz test and
the integration test that sends these cases through a real worker.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence, TypeVar

import orjson

from agents.ingest import contract_check
from agents.ingest.contract_check import FieldRule
from agents.ingest.normalise import SOURCE_CONTRACTS, IngestPolicy, Origin, ingest
from agents.ingest.rejection import Rejected
from schemas import CONTRACTS
from tests.samples import MKE_CALL, NYC_NOISE, SF_ON_SCENE, TORONTO

T = TypeVar("T")

ACCEPT = "accept"
SOURCES = ("cad", "crisis", "community")
PROFILES = {"cad": ("milwaukee_pd_cfs", "sf_fire_cfs"), "crisis": ("toronto_persons_in_crisis",),
            "community": ("nyc_311",)}
SAMPLES = {"cad": (MKE_CALL, SF_ON_SCENE), "crisis": (TORONTO,), "community": (NYC_NOISE,)}
# PII put into some seeds: a dead letter's detail must never repeat it.
PII_MARK = "Jane Roe 414-555-0100"
PII_FIELDS = {"cad": ("caller_name", "narrative"), "crisis": ("client_name", "narrative"),
              "community": ("text",)}

RULES: dict[str, tuple[FieldRule, ...]] = {
    source: contract_check.rules_for(CONTRACTS[name]) for source, name in SOURCE_CONTRACTS.items()
}
COORDINATES = ("latitude", "longitude")
# Bytes that are never valid UTF-8: stray continuation, invalid lead bytes, an overlong
# encoding, a UTF-8-encoded surrogate, a truncated sequence.
BAD_UTF8 = (b"\x80", b"\xff", b"\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf5\x80\x80\x80",
            b"\xc3\x28")
# Characters that break naive text handling: NUL, controls, bidi overrides, zero-width, BOM,
# line separators, combining marks, astral emoji, CJK, non-ASCII digits.
ODD_CHARS = ("\x00", "\x1f", "\x7f", "\u202e", "\u200b", "\ufeff", "\u2028", "\u0301", "\U0001f600",
             "中", "é", "ß", "²", "٣", '"', "\\", "\t", "\n", "/", "<", "{")
ALPHABET = tuple("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,:;#@'()")


class Draw(Protocol):
    """Where a case's choices come from (seeded random or Hypothesis)."""

    def integer(self, lo: int, hi: int) -> int: ...
    def real(self, lo: float, hi: float) -> float: ...
    def choice(self, options: Sequence[T]) -> T: ...
    def text(self, min_size: int, max_size: int) -> str: ...


class RandomDraw:
    """Choices from a seeded `random.Random`: fast, and the same on every run."""

    def __init__(self, seed: str | int) -> None:
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def real(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def text(self, min_size: int, max_size: int) -> str:
        size = self.rng.randint(min_size, max_size)
        pool = ALPHABET if self.rng.random() < 0.6 else ALPHABET + ODD_CHARS
        return "".join(self.rng.choice(pool) for _ in range(size))


class HypothesisDraw:
    """Choices from Hypothesis, so that a failing case shrinks."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(self.st.integers(lo, hi))

    def real(self, lo: float, hi: float) -> float:
        return self.data.draw(self.st.floats(lo, hi, allow_nan=False, allow_infinity=False))

    def choice(self, options: Sequence[T]) -> T:
        return self.data.draw(self.st.sampled_from(options))

    def text(self, min_size: int, max_size: int) -> str:
        return self.data.draw(self.st.text(min_size=min_size, max_size=max_size))


@dataclass(frozen=True)
class Case:
    """One source message to ingest, and what must become of it."""

    source: str
    mutation: str  # the mutation class, for coverage counts and failure reports
    raw: bytes | None
    expect: str | None  # ACCEPT, a dead-letter reason, or None: only the general property
    field: str | None = None  # the field a rejection must name, when known
    same_as: bytes | None = None  # must normalise exactly as this message does

    def describe(self) -> str:
        shown = repr(self.raw[:300]) if self.raw is not None else "None"
        size = len(self.raw) if self.raw is not None else 0
        return (f"[{self.source}/{self.mutation}] expect={self.expect} field={self.field} "
                f"({size} bytes) {shown}")


# ------------------------------------------------------------------------------------------
# Seeds: real messages that ingest accepts
# ------------------------------------------------------------------------------------------


def replayed_messages(shared_data_dir: Path, source: str, rows: int) -> list[dict[str, Any]]:
    """Messages of the first `rows` rows of each data set of `source`, as `rtcc replay` maps
    them (without reading the whole file, which the full replay plan does)."""
    from streams.replay import profile as profiles
    from streams.replay.mapping import map_row

    out: list[dict[str, Any]] = []
    for name in PROFILES[source]:
        prof = profiles.load(name)
        path = prof.data_path(shared_data_dir)
        with path.open(newline="", encoding=prof.encoding) as f:
            reader = csv.DictReader(f, delimiter=prof.delimiter)
            for index, row in enumerate(itertools.islice(reader, rows)):
                out.extend(event.message for event in map_row(prof, row, index).events)
    return out


def accepted(source: str, message: dict[str, Any], policy: IngestPolicy) -> bool:
    try:
        ingest(source, orjson.dumps(message), policy, Origin("seed", 0, 0))
        return True
    except Rejected:
        return False


def seeds(source: str, policy: IngestPolicy, shared_data_dir: Path | None,
          rows: int = 150) -> list[dict[str, Any]]:
    """Good messages of a source: the hand-made samples, real rows, and copies with PII."""
    messages = [dict(m) for m in SAMPLES[source]]
    if shared_data_dir is not None:
        messages += replayed_messages(shared_data_dir, source, rows)
    good = [m for m in messages if accepted(source, m, policy)]
    for i, m in enumerate(good[:20]):
        good.append({**m, **{f: PII_MARK for f in PII_FIELDS[source]}, "event_id": f"pii-{i}"})
    assert good, f"no good {source} seed"
    return good


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def dumps(message: Any) -> bytes:
    return orjson.dumps(message)


def _rule(source: str, name: str) -> FieldRule:
    return next(r for r in RULES[source] if r.name == name)


def _time_fields(source: str) -> list[str]:
    return [r.name for r in RULES[source] if r.name.endswith("_time")]


def _plain_str_fields(source: str) -> list[str]:
    """String fields without enumeration or time syntax: any non-blank text is good there."""
    return [r.name for r in RULES[source]
            if r.kind == "str" and r.enum is None and not r.name.endswith("_time")]


def _enum_fields(source: str) -> list[FieldRule]:
    return [r for r in RULES[source] if r.enum is not None]


def _utf8_or(raw: bytes, otherwise: str) -> str:
    """The reason of bytes that are not valid JSON: not_utf8 unless they decode."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    return otherwise


def _nonblank(draw: Draw, min_size: int = 1, max_size: int = 30) -> str:
    """Text that stays non-empty after str.strip() (the contract's blank test)."""
    text = draw.text(min_size, max_size)
    return text if text.strip() else f"x{text}x"


def _huge(draw: Draw, chars: int) -> str:
    """A string of exactly `chars` characters, no blank ends, from a repeated chunk."""
    chunk = f"A{draw.text(0, 12)}Z"
    return (chunk * (chars // len(chunk) + 1))[:chars - 1] + "Z"


def _time_text(when: datetime, style: str) -> str:
    if style == "naive":
        return when.replace(tzinfo=None).isoformat()
    if style == "Z":
        try:
            return when.astimezone(timezone.utc).replace(tzinfo=None).isoformat() + "Z"
        except OverflowError:  # 0001-01-01T00:00+05:00 has no UTC year
            pass
    return when.isoformat()


def _random_moment(draw: Draw, year_lo: int, year_hi: int) -> datetime:
    offset = timedelta(minutes=draw.integer(-23 * 60 - 59, 23 * 60 + 59))
    return datetime(draw.integer(year_lo, year_hi), draw.integer(1, 12), draw.integer(1, 28),
                    draw.integer(0, 23), draw.integer(0, 59), draw.integer(0, 59),
                    tzinfo=timezone(offset))


def _pairs_json(pairs: list[tuple[str, Any]]) -> bytes:
    """A JSON object from key/value pairs, keys repeated as given (orjson cannot)."""
    return b"{" + b",".join(dumps(k) + b":" + dumps(v) for k, v in pairs) + b"}"


# ------------------------------------------------------------------------------------------
# Mutations: each returns a Case from a good message
# ------------------------------------------------------------------------------------------

Mutation = Callable[[Draw, str, dict[str, Any], IngestPolicy], Case]


def m_unchanged(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    raw = dumps(msg)
    return Case(source, "unchanged", raw, ACCEPT, same_as=raw)


def m_reencoded(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """The same object written differently: escapes, indentation, key order, whitespace."""
    items = list(msg.items())
    order = draw.choice(("as_is", "reversed", "sorted"))
    if order == "reversed":
        items.reverse()
    elif order == "sorted":
        items.sort()
    style = draw.choice(("ascii", "indent", "spaced", "padded"))
    obj = dict(items)
    if style == "ascii":
        raw = json.dumps(obj, ensure_ascii=True).encode()
    elif style == "indent":
        raw = json.dumps(obj, indent=draw.integer(0, 8), ensure_ascii=False).encode()
    elif style == "spaced":
        raw = json.dumps(obj, separators=(" , ", " : "), ensure_ascii=False).encode()
    else:
        raw = b" \n\t\r" + dumps(obj) + b"\r\n "
    return Case(source, f"reencoded_{style}", raw, ACCEPT, same_as=dumps(msg))


def m_unknown_fields(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """Fields the contract does not know are ignored, whatever they hold."""
    junk: list[Any] = [None, True, -0.0, 1e308, -(2**63), 2**64 - 1, [], {}, [[[{}]]],
                       {"a": {"b": [1, "x", None]}}, "\u202e\x00", draw.text(0, 40)]
    extra = {f"x_{draw.text(1, 10)}": draw.choice(junk) for _ in range(draw.integer(1, 4))}
    known = {r.name for r in RULES[source]} | {"schema_version"}
    extra = {k: v for k, v in extra.items() if k not in known}
    return Case(source, "unknown_fields", dumps({**msg, **extra}), ACCEPT, same_as=dumps(msg))


def m_truncated(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    raw = dumps(msg)
    cut = raw[:draw.integer(0, len(raw) - 1)]
    return Case(source, "truncated", cut, _utf8_or(cut, "malformed_json"))


def m_non_utf8(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    raw = dumps(msg)
    at = draw.integer(0, len(raw))
    return Case(source, "non_utf8", raw[:at] + draw.choice(BAD_UTF8) + raw[at:], "not_utf8")


def m_other_encoding(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """A producer that writes Latin-1, CP-1252 or UTF-16/32 instead of UTF-8."""
    free = _plain_str_fields(source)
    text = json.dumps({**msg, draw.choice(free): "Café déjà vu"}, ensure_ascii=False)
    encoding = draw.choice(("latin-1", "cp1252", "utf-16", "utf-32", "utf-16-le", "utf-16-be"))
    raw = text.encode(encoding, errors="replace")
    return Case(source, f"encoding_{encoding}", raw, _utf8_or(raw, "malformed_json"))


def m_bom_or_trailer(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    raw = dumps(msg)
    kind = draw.choice(("bom", "trailer", "two_objects", "comment"))
    if kind == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif kind == "trailer":
        raw = raw + b"x" + draw.text(0, 20).encode()
    elif kind == "two_objects":
        raw = raw + b"\n" + raw
    else:
        raw = b"// sent by the CAD bridge\n" + raw
    return Case(source, f"framing_{kind}", raw, "malformed_json")


def m_not_an_object(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    value = draw.choice(([msg], [], "text", 42, -1.5, None, True, False, [[msg]]))
    if draw.choice((0, 1)) and isinstance(value, str):
        value = draw.text(0, 30)
    return Case(source, "not_an_object", dumps(value), "not_an_object")


def m_empty(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    raw = draw.choice((None, b"", b" ", b"\n\t  \r\n", b"\x00"))
    return Case(source, "empty", raw, "malformed_json")


def m_oversized(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """Padded to just over the byte limit (refused unread) or exactly to it (accepted)."""
    limit = policy.max_message_bytes
    at_limit = draw.choice((False, False, True))
    target = limit if at_limit else limit + draw.integer(1, 4096)
    base = dumps({**msg, "x_padding": ""})
    padded = dumps({**msg, "x_padding": "p" * (target - len(base))})
    assert len(padded) == target
    if at_limit:
        return Case(source, "at_size_limit", padded, ACCEPT, same_as=dumps(msg))
    return Case(source, "oversized", padded, "oversized")


def m_deep_nesting(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """A nested unknown field: fine up to the parser's depth limit (1,024), refused beyond."""
    depth = draw.choice((draw.integer(1, 1000), draw.integer(1100, 20_000)))
    nested = b"[" * depth + b"]" * depth
    raw = dumps(msg)[:-1] + b',"x_nested":' + nested + b"}"
    if depth <= 1000:
        return Case(source, "deep_nesting_ok", raw, ACCEPT, same_as=dumps(msg))
    return Case(source, "deep_nesting", raw, "malformed_json")


def m_nan_coordinates(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """NaN, infinite and overflowing numbers: not JSON, so the message is malformed."""
    which = draw.choice(COORDINATES)
    literal = draw.choice(("NaN", "-NaN", "Infinity", "-Infinity", "1e999", "-1e400", "nan", "inf",
                           "1" + "0" * 400))
    placeholder = "@@NUMBER@@"
    base = {"latitude": 43.0, "longitude": -87.9, **msg, which: placeholder}
    raw = dumps(base).replace(dumps(placeholder), literal.encode())
    return Case(source, "nan_coordinates", raw, "malformed_json")


def m_python_json_nan(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """What Python's json module writes for float('nan') and float('inf')."""
    which = draw.choice(COORDINATES)
    value = draw.choice((math.nan, math.inf, -math.inf))
    raw = json.dumps({**msg, which: value}).encode()
    return Case(source, "python_nan", raw, "malformed_json")


def m_lone_surrogate(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    name = draw.choice(_plain_str_fields(source))
    placeholder = "@@SURROGATE@@"
    escape = draw.choice((b'"\\ud800"', b'"\\udfff"', b'"x\\ud83d"', b'"\\udc00\\ud800"'))
    raw = dumps({**msg, name: placeholder}).replace(dumps(placeholder), escape)
    return Case(source, "lone_surrogate", raw, "malformed_json")


def m_missing_required(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    rule = draw.choice([r for r in RULES[source] if r.required])
    how = draw.choice(("absent", None, "", "   ", "\t\n", []))
    out = dict(msg)
    if how == "absent":
        out.pop(rule.name, None)
    else:
        out[rule.name] = how
    return Case(source, "missing_required", dumps(out), "missing_field", rule.name)


WRONG_TYPES = {
    "str": (1.5, -0.25, True, False, ["x"], {"a": "b"}, [1], 1e300),
    "float": ("43.1", "NaN", "Infinity", True, False, [43.1], {"lat": 43.1}),
    "list_str": ("E38", 5, True, {"unit": "E38"}, 1.5),
    "list_item": (1.5, None, True, ["E38"], {"u": 1}),
}


def m_wrong_type(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    rule = draw.choice(RULES[source])
    if rule.kind == "list_str" and draw.choice((0, 1)):
        value: Any = ["ok", draw.choice(WRONG_TYPES["list_item"])]
    else:
        value = draw.choice(WRONG_TYPES[rule.kind])
    out = {**msg, rule.name: value}
    if rule.name in COORDINATES:  # the other one valid, so that only this one is wrong
        other = "longitude" if rule.name == "latitude" else "latitude"
        out.setdefault(other, msg.get(other, 0.0))
    return Case(source, "wrong_type", dumps(out), "wrong_type", rule.name)


def m_number_for_string(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """Ids as JSON numbers are read as strings (CAD exports do that); enums then mismatch."""
    rule = draw.choice([r for r in RULES[source] if r.kind == "str"])
    value = draw.choice((0, 7, 1211372, -5, 2**63 - 1, -(2**63)))
    out = dumps({**msg, rule.name: value})
    if rule.enum is not None:
        return Case(source, "number_for_enum", out, "unknown_value", rule.name)
    if rule.name.endswith("_time"):
        return Case(source, "number_for_time", out, None)
    return Case(source, "number_for_string", out, ACCEPT)


def m_unknown_enum(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    rule = draw.choice(_enum_fields(source))
    value = draw.choice((
        _nonblank(draw), draw.choice(sorted(rule.enum)).upper(), "teleported", "CREATED ",
        draw.choice(sorted(rule.enum)) + "_v2", "null", "0",
    ))
    if value.strip() in rule.enum:
        value = f"{value}!"
    return Case(source, "unknown_enum", dumps({**msg, rule.name: value}), "unknown_value",
                rule.name)


def m_out_of_range_time(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """1900, 2100 and every year outside [min year, now + skew], in each time notation."""
    name = draw.choice(_time_fields(source))
    now = policy.clock()
    kind = draw.choice(("1900", "2100", "past", "future", "near_future", "extreme"))
    if kind == "1900":
        when = _random_moment(draw, 1900, 1900)
    elif kind == "2100":
        when = _random_moment(draw, 2100, 2100)
    elif kind == "past":
        when = _random_moment(draw, 1, policy.min_event_year - 2)
    elif kind == "future":
        when = _random_moment(draw, now.year + 2, 9999)
    elif kind == "near_future":  # beyond the skew by a minute to a few days
        when = now + timedelta(seconds=policy.max_clock_skew_s + draw.integer(60, 5 * 86400))
    else:
        when = draw.choice((datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
                            datetime(9999, 12, 31, 23, 59, 59,
                                     tzinfo=timezone(timedelta(hours=-5)))))
    style = draw.choice(("offset", "Z", "naive")) if kind != "extreme" else "offset"
    if kind == "near_future":
        style = draw.choice(("offset", "Z"))  # naive would be read in the agency's zone
    out = {**msg, name: _time_text(when, style)}
    return Case(source, f"time_{kind}", dumps(out), "time_out_of_range", name)


BAD_TIMES = ("yesterday", "2018-13-01T00:00:00", "2018-02-30T10:00:00", "2018-05-01T25:00:00",
             "2018/05/01 00:10:28", "05/01/2018 12:10:28 AM", "2018-05-01T00:10:28+25:00",
             "2018-05-01T00:10:28 PM", "١٢٣٤-٠٥-٠١", "2018", "1525151428", "T00:10:28",
             "2018-05-01T00:10:28ZZ", "0000-01-01T00:00:00", "NaN", "now")


def m_invalid_time(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    name = draw.choice(_time_fields(source))
    value = draw.choice(BAD_TIMES + (f"not a time {draw.text(0, 20)}",))
    return Case(source, "invalid_time", dumps({**msg, name: value}), "invalid_time", name)


def m_valid_time(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """Any plausible time in any notation is accepted."""
    name = draw.choice(_time_fields(source))
    when = _random_moment(draw, policy.min_event_year + 1, policy.clock().year - 1)
    style = draw.choice(("offset", "Z", "naive"))
    return Case(source, "time_valid", dumps({**msg, name: _time_text(when, style)}), ACCEPT)


def _area_box(policy: IngestPolicy, msg: dict) -> tuple[float, float, float, float]:
    area = policy.areas.by_agency.get(str(msg["agency_id"]).strip()) or policy.areas.areas[0]
    return area.min_lat, area.min_lon, area.max_lat, area.max_lon


def _inside_any(policy: IngestPolicy, msg: dict, lat: float, lon: float) -> bool:
    area = policy.areas.by_agency.get(str(msg["agency_id"]).strip())
    candidates = [area] if area else policy.areas.areas
    return any(a.contains(lat, lon) for a in candidates)


def m_bad_coordinates(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    kind = draw.choice(("wgs84", "half", "outside", "null_island"))
    out = dict(msg)
    lat0, lon0, lat1, lon1 = _area_box(policy, msg)
    inside = (draw.real(lat0, lat1), draw.real(lon0, lon1))
    if kind == "wgs84":
        bad = draw.real(90.000001, draw.choice((91.0, 1000.0, 1e300))) * draw.choice((1, -1))
        if draw.choice((0, 1)):
            out.update(latitude=bad, longitude=inside[1])
        else:
            out.update(latitude=inside[0], longitude=bad * 2.1)
        return Case(source, "coordinates_wgs84", dumps(out), "invalid_coordinates")
    if kind == "half":
        out.update(latitude=inside[0], longitude=inside[1])
        out[draw.choice(COORDINATES)] = draw.choice((None, "absent"))
        out = {k: v for k, v in out.items() if v != "absent"}
        return Case(source, "coordinates_half", dumps(out), "invalid_coordinates")
    if kind == "null_island":
        out.update(latitude=0.0, longitude=0.0)
    else:
        for _ in range(100):
            lat, lon = draw.real(-90.0, 90.0), draw.real(-180.0, 180.0)
            if not _inside_any(policy, msg, lat, lon):
                break
        else:
            lat, lon = 0.0, 0.0
        out.update(latitude=lat, longitude=lon)
    return Case(source, "coordinates_outside", dumps(out), "outside_service_area", "latitude")


def m_good_coordinates(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """Anywhere in the area (corners and edges included), as floats or integers."""
    lat0, lon0, lat1, lon1 = _area_box(policy, msg)
    lat = draw.choice((lat0, lat1, draw.real(lat0, lat1)))
    lon = draw.choice((lon0, lon1, draw.real(lon0, lon1)))
    out = {**msg, "latitude": lat, "longitude": lon}
    if not _inside_any(policy, msg, lat, lon):  # an unlisted agency: boxes are checked all
        return Case(source, "coordinates_good", dumps(out), "outside_service_area")
    return Case(source, "coordinates_good", dumps(out), ACCEPT)


def m_huge_string(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """Longer than the field allows: refused, or, within the limit, accepted where free."""
    rule = draw.choice([r for r in RULES[source] if r.kind in ("str", "list_str")])
    over = draw.choice((True, True, False))
    chars = rule.max_chars + draw.integer(1, 20_000) if over else rule.max_chars
    value: Any = _huge(draw, chars)
    if rule.kind == "list_str":
        value = ["E38", value]
    raw = dumps({**msg, rule.name: value})
    if len(raw) > policy.max_message_bytes:
        return Case(source, "huge_string", raw, "oversized")
    if over:
        return Case(source, "huge_string", raw, "oversized_field", rule.name)
    if rule.enum is not None:
        return Case(source, "long_string", raw, "unknown_value", rule.name)
    if rule.name.endswith("_time"):
        return Case(source, "long_string", raw, "invalid_time", rule.name)
    return Case(source, "long_string", raw, ACCEPT)


def m_long_list(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    lists = [r for r in RULES[source] if r.kind == "list_str"]
    if not lists:
        return m_huge_string(draw, source, msg, policy)
    rule = draw.choice(lists)
    items = draw.choice((draw.integer(0, contract_check.MAX_LIST_ITEMS),
                         draw.integer(contract_check.MAX_LIST_ITEMS + 1, 5000)))
    value = [f"U{i}" for i in range(items)]
    raw = dumps({**msg, rule.name: value})
    if items > contract_check.MAX_LIST_ITEMS:
        return Case(source, "long_list", raw, "oversized_field", rule.name)
    return Case(source, "list_ok", raw, ACCEPT)


def m_unicode_text(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """Any text in a free string field is kept; blank text in a required one is missing."""
    rule = _rule(source, draw.choice(_plain_str_fields(source)))
    text = draw.text(0, 60) + draw.choice(("", *ODD_CHARS))
    out = dumps({**msg, rule.name: text})
    if not text.strip():
        return Case(source, "unicode_blank", out, "missing_field" if rule.required else ACCEPT,
                    rule.name if rule.required else None)
    return Case(source, "unicode_text", out, ACCEPT)


def m_priority(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """Whatever a CAD sends as priority, the normalised one is 1-5 (unknown fields elsewhere)."""
    value = draw.choice(("²", "³", "٣", "١", "10", "0", "-1", "3", "1", "P1", "high", "5.0",
                         "99999999999999999999", "\u0665", "Ⅷ", "½", draw.text(1, 8)))
    return Case(source, "priority_text", dumps({**msg, "priority": value}), ACCEPT)


def m_schema_version(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    value = draw.choice((2, 0, -1, "1", "v1", 1.5, [1], {"v": 1}, True, False, None, 1, 1.0))
    raw = dumps({**msg, "schema_version": value})
    if value == 1 and not isinstance(value, bool):
        return Case(source, "schema_version_ok", raw, ACCEPT)
    return Case(source, "schema_version", raw, "unsupported_schema_version", "schema_version")


def m_duplicate_key(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """A repeated key: the last one counts (RFC 8259 leaves it open; orjson, Python's json and
    JavaScript's JSON.parse all keep the last), so a bad first value is harmless and a bad last
    one is refused."""
    rule = draw.choice([r for r in RULES[source] if r.name in msg])
    bad = draw.choice(WRONG_TYPES[rule.kind])
    pairs = list(msg.items())
    at = next(i for i, (k, _) in enumerate(pairs) if k == rule.name)
    if draw.choice((0, 1)):
        pairs.insert(at, (rule.name, bad))  # bad first, good last
        return Case(source, "duplicate_key_last_good", _pairs_json(pairs), ACCEPT,
                    same_as=dumps(msg))
    pairs.append((rule.name, bad))  # good first, bad last
    return Case(source, "duplicate_key_last_bad", _pairs_json(pairs), "wrong_type", rule.name)


SINGLE: tuple[Mutation, ...] = (
    m_unchanged, m_reencoded, m_unknown_fields, m_truncated, m_non_utf8, m_other_encoding,
    m_bom_or_trailer, m_not_an_object, m_empty, m_oversized, m_deep_nesting, m_nan_coordinates,
    m_python_json_nan, m_lone_surrogate, m_missing_required, m_wrong_type, m_number_for_string,
    m_unknown_enum, m_out_of_range_time, m_invalid_time, m_valid_time, m_bad_coordinates,
    m_good_coordinates, m_huge_string, m_long_list, m_unicode_text, m_priority,
    m_schema_version, m_duplicate_key,
)
# Mutations of the decoded object, which can be stacked before a final byte-level one.
STACKABLE: tuple[Mutation, ...] = (
    m_unknown_fields, m_missing_required, m_wrong_type, m_number_for_string, m_unknown_enum,
    m_out_of_range_time, m_invalid_time, m_valid_time, m_bad_coordinates, m_good_coordinates,
    m_unicode_text, m_priority, m_schema_version, m_long_list,
)
BYTE_LEVEL: tuple[Mutation, ...] = (m_truncated, m_non_utf8, m_duplicate_key, m_reencoded)


def m_mixed(draw: Draw, source: str, msg: dict, policy: IngestPolicy) -> Case:
    """Several mutations at once: only the general property is promised."""
    current = dict(msg)
    for _ in range(draw.integer(2, 4)):
        case = draw.choice(STACKABLE)(draw, source, current, policy)
        decoded = orjson.loads(case.raw) if case.raw else None
        if not isinstance(decoded, dict) or "agency_id" not in decoded:
            break
        current = decoded
    raw = dumps(current)
    if draw.choice((0, 1, 2)) == 0:
        raw = draw.choice(BYTE_LEVEL)(draw, source, current, policy).raw
    return Case(source, "mixed", raw, None)


MUTATIONS: tuple[Mutation, ...] = SINGLE + (m_mixed, m_mixed, m_mixed)


def make_case(draw: Draw, source: str, good: Sequence[dict[str, Any]],
              policy: IngestPolicy) -> Case:
    return draw.choice(MUTATIONS)(draw, source, draw.choice(good), policy)


def cases(source: str, good: Sequence[dict[str, Any]], policy: IngestPolicy, count: int,
          seed: str = "rtcc-fuzz-1") -> Iterator[Case]:
    """`count` cases of a source, the same on every run (generated lazily: some are large)."""
    draw = RandomDraw(f"{seed}:{source}")
    for _ in range(count):
        yield make_case(draw, source, good, policy)
