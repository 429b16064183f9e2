"""schemas.records builds, copies and serialises Records exactly as Faust does.

Checked on the events ingest makes of every replay profile's real data, since those are
what the plain path carries in a worker, and on the edges of Faust's generated `__init__`.
"""

from __future__ import annotations

from typing import Any, Optional

import faust
import orjson
import pytest

from tests.unit.agent_state import checkpoint_flush  # noqa: F401  first: tables in memory

from agents.ingest.normalise import IngestPolicy, ghosts
from schemas import records
from schemas.envelope import NormalisedEvent, Pii
from streams import channels
from streams.config import load
from streams.offline import ingest_profile

PROFILES = ("milwaukee_pd_cfs", "toronto_persons_in_crisis", "nyc_311", "sf_fire_cfs")


def faust_rebuilt(event: NormalisedEvent) -> NormalisedEvent:
    """The same event through Faust's own constructor (one descriptor call per field)."""
    return NormalisedEvent(**event.asdict())


@pytest.fixture(scope="module")
def real_events() -> list[NormalisedEvent]:
    events: list[NormalisedEvent] = []
    for name in PROFILES:
        made, _ = ingest_profile(name, limit=1500)
        assert made, name
        events += made
    return events


def test_the_normalised_event_takes_the_plain_path() -> None:
    # Otherwise every test below would compare Faust with itself.
    assert records.plain(NormalisedEvent) and records.plain(Pii)


def test_real_events_are_the_records_faust_builds_and_the_bytes_a_topic_writes(
        real_events: list[NormalisedEvent]) -> None:
    for event in real_events:
        rebuilt = faust_rebuilt(event)
        assert event == rebuilt
        assert records.asdict(event) == rebuilt.asdict()
        assert list(records.asdict(event)) == list(rebuilt.asdict())  # field order on the wire
        assert records.dumps(event) == channels.normalised.prepare_value(rebuilt, None)[0]


def test_ghosts_are_what_derive_makes(real_events: list[NormalisedEvent]) -> None:
    policy = IngestPolicy.from_settings(load())
    copies = [(event, copy) for event in real_events for copy in ghosts(event, policy)]
    assert copies, "no event of the replays lies near an area border"
    for event, copy in copies:
        assert copy == event.derive(area_key=copy.area_key, ghost=True)
        assert copy.ghost and not event.ghost  # the original is left as it was
        assert records.dumps(copy) == copy.dumps()


def test_an_event_with_personal_data_serialises_it_nested() -> None:
    fields: dict[str, Any] = dict(
        event_id="cad:A:1", source="cad", kind="created", subject_id="cad:A:9", agency_id="A",
        category="welfare", mental_health=True, priority=2,
        event_time="2026-01-01T00:00:00Z", area_key="district:A:1",
        pii=records.build(Pii, name="N. Person", phone=None, narrative="text"),
    )
    built = records.build(NormalisedEvent, **fields)
    assert built == NormalisedEvent(**fields)
    assert orjson.loads(records.dumps(built))["pii"] == {
        "name": "N. Person", "phone": None, "narrative": "text"}
    assert records.dumps(built) == NormalisedEvent(**fields).dumps()


def test_none_for_an_optional_field_takes_its_default_as_in_faust() -> None:
    fields: dict[str, Any] = dict(
        event_id="e", source="cad", kind="k", subject_id="s", agency_id="A",
        category="other", mental_health=False, priority=3, event_time="t", area_key="a",
        units=None, reason_codes=None, ghost=None, schema_version=None,
    )
    built = records.build(NormalisedEvent, **fields)
    assert (built.units, built.reason_codes, built.ghost, built.schema_version) == ([], [], False, 1)
    assert built.asdict() == NormalisedEvent(**fields).asdict()


def test_unknown_and_missing_fields_are_refused_as_in_faust() -> None:
    with pytest.raises(TypeError, match="unexpected.*colour"):
        records.build(Pii, colour="red")
    with pytest.raises(TypeError):
        Pii(colour="red")
    with pytest.raises(TypeError, match="missing.*event_id"):
        records.build(NormalisedEvent, source="cad")
    with pytest.raises(TypeError):
        NormalisedEvent(source="cad")


class Coerced(faust.Record, coerce=True):
    count: int
    label: Optional[str] = None


def test_a_record_that_coerces_is_left_to_faust() -> None:
    assert not records.plain(Coerced)
    built = records.build(Coerced, count="3")
    assert built.count == 3  # coerced, as Faust does; the plain path would keep "3"
    assert records.copy(built, count="4").count == 4
    assert records.asdict(built) == {"count": 3, "label": None}
    # its representation, Faust's metadata included, as a topic would write it
    assert orjson.loads(records.dumps(built)) == built.to_representation()
    assert "__faust" in orjson.loads(records.dumps(built))
