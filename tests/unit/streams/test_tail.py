import base64

import pytest

from streams.tail import Condition, render


def test_conditions_match_nested_fields_lists_and_booleans():
    doc = {"category": "violent", "mental_health": False, "units": ["E38", "M12"],
           "pii": {"name": "x"}}
    assert Condition.parse("category=violent").matches(doc)
    assert not Condition.parse("category=property").matches(doc)
    assert Condition.parse("category!=property").matches(doc)
    assert Condition.parse("mental_health=false").matches(doc)
    assert Condition.parse("units=M12").matches(doc)
    assert Condition.parse("pii.name=x").matches(doc)
    assert not Condition.parse("missing.field=x").matches(doc)


@pytest.mark.parametrize("text", ["category", "=x", ""])
def test_bad_conditions_are_refused(text):
    with pytest.raises(ValueError):
        Condition.parse(text)


def test_renders_a_normalised_event_on_one_line():
    line = render({"event_time": "2018-05-01T05:10:28Z", "source": "cad", "kind": "created",
                   "subject_id": "cad:MPD:1211372", "category": "mental_health", "priority": 2,
                   "mental_health": True, "type_text": "WELFARE CITIZEN",
                   "address_text": "5237 N 35TH ST,MKE"})
    assert "\n" not in line
    for part in ("cad:MPD:1211372", "mental_health", "p2", "MH", "WELFARE CITIZEN"):
        assert part in line


def test_renders_a_dead_letter_with_a_preview_of_the_bytes():
    line = render({"failed_time": "t", "reason": "malformed_json", "field": None,
                   "source_topic": "cad.events", "source_partition": 1, "source_offset": 9,
                   "detail": "unexpected end", "original_value_b64":
                   base64.b64encode(b'{"event_id": "1"').decode()})
    assert "malformed_json" in line and "cad.events[1]@9" in line and "event_id" in line


def test_selected_fields_and_unknown_shapes():
    assert render({"a": 1, "b": "x"}, ["b"]) == "b=x"
    assert render({"zzz": 1}) == '{"zzz":1}'
