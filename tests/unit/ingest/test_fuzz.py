"""Fuzzing ingest with hostile and broken messages: it never raises, nothing is lost.

The property, for every case of tests/fuzz_cases.py: `ingest` returns a normalised event
that keeps the contract's invariants (valid against the published JSON Schema, coordinates
finite and inside the service area, times within the plausible range, a known category,
priority 1-5, provenance kept, PII only under `pii`), or raises `Rejected` with a listed
reason whose dead-letter record carries the original bytes. A single mutation of a good
message must end exactly as predicted (accepted, or that reason and field), and a benign
re-encoding exactly as the message it re-encodes.

10,000 seeded cases per source run as a plain loop (Hypothesis costs ~1 ms an example, so
30,000 of them would take most of a minute); a smaller Hypothesis run drives the same
mutation engine so that a failure found there shrinks to a minimal message. Both are
deterministic: a fixed seed, and Hypothesis derandomized without a database.
"""

from __future__ import annotations

import base64
import math
import re
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from agents.ingest.dead_letters import (
    MAX_KEPT_VALUE_BYTES, dead_letter, dead_letter_key,
)
from agents.ingest.normalise import IngestPolicy, Origin, ghosts, ingest
from agents.ingest.rejection import Rejected
from schemas.dead_letter import REASONS
from schemas.envelope import CATEGORIES, NormalisedEvent
from schemas.jsonschema import JSON_DIR
from tests.fuzz_cases import (
    ACCEPT, PII_MARK, RULES, SOURCES, Case, HypothesisDraw, cases, make_case, seeds,
)

CASES_PER_SOURCE = 10_000
HYPOTHESIS_EXAMPLES = 1000
SLOWEST_CASE_S = 1.0  # far above the ~0.1 ms a message takes: a hang, not noise
# The list, by the names tests/fuzz_cases.py gives its mutations.
HOSTILE_CLASSES = (
    "truncated", "wrong_type", "number_for_enum", "huge_string", "long_list", "nan_coordinates",
    "python_nan", "coordinates_wgs84", "coordinates_outside", "coordinates_half", "time_1900",
    "time_2100", "time_past", "time_future", "time_near_future", "invalid_time", "unknown_enum",
    "duplicate_key_last_good", "duplicate_key_last_bad", "non_utf8", "lone_surrogate",
    "oversized", "at_size_limit", "deep_nesting", "not_an_object", "empty", "missing_required",
    "schema_version", "unicode_text", "priority_text", "unknown_fields", "mixed", "unchanged",
)
KAFKA_MESSAGE_BYTES = 1_000_000  # Faust's producer_max_request_size
UTC_SECOND = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def good(policy: IngestPolicy, shared_data) -> dict[str, list[dict[str, Any]]]:
    return {source: seeds(source, policy, shared_data) for source in SOURCES}


def _validator(name: str) -> Draft202012Validator:
    """The published JSON Schema of a contract, with the schemas it refers to."""
    docs = [orjson.loads(path.read_bytes()) for path in JSON_DIR.glob("*.schema.json")]
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)
    doc = orjson.loads((JSON_DIR / f"{name}.v1.schema.json").read_bytes())
    return Draft202012Validator(doc, registry=registry)


class Checker:
    """Runs one case through ingest and checks the property; counts what happened."""

    def __init__(self, policy: IngestPolicy) -> None:
        self.policy = policy
        self.event_schema = _validator("normalised-event")
        self.dead_letter_schema = _validator("dead-letter")
        self.baselines: dict[bytes, dict[str, Any]] = {}
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.offset = 0

    def origin(self, source: str) -> Origin:
        self.offset += 1
        return Origin(topic=f"{source}.events", partition=3, offset=self.offset,
                      timestamp_ms=1_700_000_000_000)

    def __call__(self, case: Case) -> str:
        origin = self.origin(case.source)
        started = time.perf_counter()
        try:
            result: NormalisedEvent | Rejected = ingest(case.source, case.raw, self.policy, origin)
        except Rejected as rejected:
            result = rejected
        except Exception as exc:  # noqa: BLE001 - the property under test
            pytest.fail(f"ingest raised {type(exc).__name__}: {exc}\n{case.describe()}")
        took = time.perf_counter() - started
        assert took < SLOWEST_CASE_S, f"{took:.2f} s for one message\n{case.describe()}"
        if isinstance(result, Rejected):
            self._check_rejected(case, result, origin)
            label = result.reason
        else:
            self._check_event(case, result, origin)
            label = ACCEPT
        if case.expect is not None:
            got = f"{label} ({result.field}: {result.detail})" if isinstance(result, Rejected) \
                else label
            assert label == case.expect, f"expected {case.expect}, got {got}\n{case.describe()}"
            if case.field is not None:
                assert result.field == case.field, f"field {result.field}\n{case.describe()}"
        self.outcomes[(case.mutation, label)] += 1
        return label

    def _check_rejected(self, case: Case, rejected: Rejected, origin: Origin) -> None:
        assert rejected.reason in REASONS and rejected.reason != "processing_error", \
            case.describe()
        assert rejected.detail is None or (
            len(rejected.detail) <= 300 and PII_MARK not in rejected.detail), case.describe()
        record = dead_letter(rejected, f"ingest.{case.source}", origin, b"key", case.raw)
        wire = orjson.loads(record.dumps())
        self.dead_letter_schema.validate(wire)
        value = case.raw or b""
        assert base64.b64decode(wire["original_value_b64"]) == value[:MAX_KEPT_VALUE_BYTES], \
            case.describe()
        assert len(record.dumps()) < KAFKA_MESSAGE_BYTES, case.describe()
        assert (wire["source_topic"], wire["source_offset"]) == (origin.topic, origin.offset)

    def _check_event(self, case: Case, event: NormalisedEvent, origin: Origin) -> None:
        where = case.describe()
        wire = orjson.loads(event.dumps())
        self.event_schema.validate(wire)
        assert orjson.loads(NormalisedEvent.from_data(wire).dumps()) == wire, where
        assert wire["source"] == case.source, where
        assert wire["event_id"].startswith(f"{case.source}:{wire['agency_id']}:"), where
        assert wire["event_id"] != f"{case.source}:{wire['agency_id']}:", where
        assert wire["category"] in CATEGORIES, where
        assert type(wire["priority"]) is int and 1 <= wire["priority"] <= 5, where
        assert type(wire["mental_health"]) is bool, where
        latest = self.policy.clock() + timedelta(seconds=self.policy.max_clock_skew_s)
        for name in ("event_time", "received_time"):
            if wire[name] is not None:
                assert UTC_SECOND.match(wire[name]), where
                when = datetime.fromisoformat(wire[name])
                assert self.policy.min_event_year <= when.year and when <= latest, where
        lat, lon = wire["latitude"], wire["longitude"]
        assert (lat is None) == (lon is None) == (wire["cell"] is None), where
        if lat is not None:
            assert math.isfinite(lat) and math.isfinite(lon), where
            area = self.policy.areas.by_agency.get(wire["agency_id"])
            areas = [area] if area else self.policy.areas.areas
            assert any(a.contains(lat, lon) for a in areas), where
        assert wire["area_key"], where
        assert (wire["source_topic"], wire["source_partition"], wire["source_offset"]) == \
            (origin.topic, origin.partition, origin.offset), where
        top_level = {k: v for k, v in wire.items() if k != "pii"}
        assert PII_MARK not in orjson.dumps(top_level).decode(), where
        for ghost in ghosts(event, self.policy):
            assert ghost.ghost and ghost.area_key != event.area_key, where
        if case.same_as is not None:
            assert self._comparable(wire) == self._baseline(case, origin), where

    @staticmethod
    def _comparable(wire: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in wire.items() if k != "source_offset"}

    def _baseline(self, case: Case, origin: Origin) -> dict[str, Any]:
        assert case.same_as is not None
        if case.same_as not in self.baselines:
            event = ingest(case.source, case.same_as, self.policy, origin)
            self.baselines[case.same_as] = self._comparable(orjson.loads(event.dumps()))
        return self.baselines[case.same_as]


@pytest.mark.parametrize("source", SOURCES)
def test_ten_thousand_mutated_messages_per_source(source: str, policy: IngestPolicy,
                                                  good: dict[str, list[dict[str, Any]]]) -> None:
    check = Checker(policy)
    started = time.perf_counter()
    labels = Counter(check(case) for case in cases(source, good[source], policy,
                                                    CASES_PER_SOURCE))
    elapsed = time.perf_counter() - started
    assert sum(labels.values()) == CASES_PER_SOURCE
    # Every hostile class ran, and the run both accepted and refused plenty.
    ran = Counter(mutation for mutation, _ in check.outcomes.elements())
    applicable = [m for m in HOSTILE_CLASSES
                  if m != "long_list" or any(r.kind == "list_str" for r in RULES[source])]
    missing = {m for m in applicable if ran[m] < 10}
    assert not missing, f"mutation classes that ran fewer than 10 times: {missing}: {ran}"
    assert labels[ACCEPT] >= CASES_PER_SOURCE // 10, labels
    for reason in ("oversized", "not_utf8", "malformed_json", "not_an_object", "missing_field",
                   "wrong_type", "unknown_value", "invalid_time", "time_out_of_range",
                   "invalid_coordinates", "outside_service_area", "oversized_field",
                   "unsupported_schema_version"):
        assert labels[reason] >= 20, f"{reason} reached only {labels[reason]} times: {labels}"
    print(f"\n{source}: {CASES_PER_SOURCE} cases in {elapsed:.1f} s: {dict(labels)}")


@pytest.mark.parametrize("source", SOURCES)
def test_hypothesis_drives_the_same_mutations(source: str, policy: IngestPolicy,
                                              good: dict[str, list[dict[str, Any]]]) -> None:
    check = Checker(policy)

    @settings(max_examples=HYPOTHESIS_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def one_case(data: st.DataObject) -> None:
        check(make_case(HypothesisDraw(data), source, good[source], policy))

    one_case()
    assert sum(check.outcomes.values()) >= HYPOTHESIS_EXAMPLES


def test_known_crashers_are_refused_with_a_reason(policy: IngestPolicy) -> None:
    """Messages that made ingest raise before the fuzz test found them."""
    from tests.samples import MKE_CALL, SF_ON_SCENE

    # A time whose UTC conversion leaves datetime's range (OverflowError).
    for text in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59"):
        with pytest.raises(Rejected) as refused:
            ingest("cad", orjson.dumps({**MKE_CALL, "event_time": text}), policy,
                   Origin("cad.events", 0, 0))
        assert (refused.value.reason, refused.value.field) == ("time_out_of_range", "event_time")
    # A priority of digits that str.isdigit accepts but int() refuses: the type's default.
    event = ingest("cad", orjson.dumps({**SF_ON_SCENE, "priority": "²"}), policy,
                   Origin("cad.events", 0, 0))
    assert 1 <= event.priority <= 5
    # JSON true is not schema version 1, although True == 1 in Python.
    with pytest.raises(Rejected) as refused:
        ingest("cad", orjson.dumps({**MKE_CALL, "schema_version": True}), policy,
               Origin("cad.events", 0, 0))
    assert refused.value.reason == "unsupported_schema_version"


def test_a_dead_letter_always_fits_one_kafka_message(origin: Origin) -> None:
    """A message as large as the broker takes (1 MiB) with a giant key: its dead letter, base64
    and all, is still one message the producer can send (it used to crash the agent)."""
    value, key = b"{" + b"x" * (1024 * 1024), b"k" * (1024 * 1024)
    record = dead_letter(Rejected("oversized", detail="too big"), "ingest.cad", origin, key, value)
    kept_key = dead_letter_key(key)
    assert kept_key is not None
    assert len(record.dumps()) + len(kept_key) < KAFKA_MESSAGE_BYTES
    assert base64.b64decode(record.original_value_b64) == value[:MAX_KEPT_VALUE_BYTES]
    assert record.detail.startswith("too big; original_value_b64 holds the first 524288 of ")
    assert "original_key_b64 holds the first" in record.detail
    small = dead_letter(Rejected("oversized"), "ingest.cad", origin, b"k", b"{}")
    assert (small.detail, base64.b64decode(small.original_value_b64)) == (None, b"{}")
