"""The JSON Schema files partners read stay equal to the Records the code uses."""

from __future__ import annotations

import orjson
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from agents.ingest.dead_letters import dead_letter
from agents.ingest.normalise import normalise_cad, normalise_crisis
from agents.ingest.rejection import Rejected
from schemas import CONTRACTS, SaUpdate
from schemas.jsonschema import JSON_DIR, rendered_files
from tests.samples import MKE_CALL, NYC_NOISE, SF_ON_SCENE, TORONTO


def test_committed_files_equal_the_rendering():
    rendered = rendered_files()
    committed = {p.name: p.read_bytes() for p in JSON_DIR.glob("*.schema.json")}
    assert set(committed) == set(rendered), "run `make schemas` and commit schemas/json"
    for name, content in rendered.items():
        assert committed[name] == content, f"{name} is stale: run `make schemas`"


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft202012Validator]:
    docs = {c.name: orjson.loads((JSON_DIR / f"{c.name}.v{c.version}.schema.json").read_bytes())
            for c in CONTRACTS.values()}
    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in docs.values())
    for doc in docs.values():
        Draft202012Validator.check_schema(doc)
    return {name: Draft202012Validator(doc, registry=registry) for name, doc in docs.items()}


@pytest.mark.parametrize(
    "contract, message",
    [("cad-event", MKE_CALL), ("cad-event", SF_ON_SCENE), ("crisis-event", TORONTO),
     ("community-report", NYC_NOISE)],
)
def test_source_examples_validate(validators, contract, message):
    validators[contract].validate(message)


def test_schema_rejects_what_the_validator_rejects(validators):
    assert not validators["cad-event"].is_valid({**MKE_CALL, "event_type": "exploded"})
    assert not validators["cad-event"].is_valid({k: v for k, v in MKE_CALL.items() if k != "agency_id"})
    assert not validators["crisis-event"].is_valid({**TORONTO, "schema_version": 2})


def _wire(record) -> dict:
    """What a consumer of the topic receives."""
    return orjson.loads(record.dumps())


def test_normalised_events_validate(validators, policy, origin):
    cad = normalise_cad({**MKE_CALL, "caller_name": "Jane Roe"}, policy, origin)
    validators["normalised-event"].validate(_wire(cad))
    validators["normalised-event"].validate(_wire(normalise_crisis(dict(TORONTO), policy, origin)))
    assert _wire(cad)["pii"] == {"name": "Jane Roe", "phone": None, "narrative": None}


def test_dead_letter_validates(validators, origin):
    record = dead_letter(Rejected("malformed_json", detail="x"), "ingest.cad", origin, b"k", b"{")
    validators["dead-letter"].validate(_wire(record))


def test_sa_update_validates(validators):
    update = SaUpdate(update_id="u1", subject_kind="incident", subject_id="cad:MPD:1",
                      version=1, kind="opened", state={"status": "created"},
                      event_time="2018-05-01T05:10:28Z")
    validators["sa-update"].validate(_wire(update))
    assert not validators["sa-update"].is_valid({**_wire(update), "kind": "exploded"})


def test_wire_format_carries_no_faust_metadata(policy, origin):
    assert "__faust" not in _wire(normalise_cad(dict(MKE_CALL), policy, origin))
