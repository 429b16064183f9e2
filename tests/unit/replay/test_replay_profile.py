"""Profiles: the shipped ones load, and broken ones fail at load (or on opening the file)
with a message that names the key or column at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.replay import profile as profiles
from streams.replay.player import read_rows
from streams.replay.profile import ProfileError, Template

SHIPPED = ["milwaukee_pd_cfs", "nyc_311", "sf_fire_cfs", "toronto_persons_in_crisis"]


def test_every_data_set_has_a_shipped_profile() -> None:
    assert profiles.available_profiles() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load_and_match_their_files(name: str, data_dir: Path) -> None:
    prof = profiles.load(name)
    assert prof.name == name
    assert prof.description
    rows = read_rows(prof, prof.data_path(data_dir))  # checks every column exists
    assert rows


def test_shipped_profile_targets(data_dir: Path) -> None:
    sf = profiles.load("sf_fire_cfs")
    assert (sf.source.name, sf.source.topic.name, sf.timezone) == ("cad", "cad.events",
                                                                   "America/Los_Angeles")
    assert [s.step for s in sf.lifecycle] == ["created", "dispatched", "en_route", "on_scene",
                                               "cleared"]
    assert profiles.load("nyc_311").encoding == "utf-8-sig"
    assert profiles.load("toronto_persons_in_crisis").source.topic.name == "crisis.events"


def test_profile_by_path(write_profile, tiny_cad) -> None:
    path = write_profile(tiny_cad)
    prof = profiles.load(str(path))
    assert prof.name == "tiny" and prof.path == path
    assert prof.key.text == "{agency_id}:{incident_number}"  # the source's default key
    assert prof.order_by == "event_time"
    assert prof.format == "csv"  # from the file's extension


def _error(write_profile, data) -> str:
    with pytest.raises(ProfileError) as info:
        profiles.load(str(write_profile(data)))
    return str(info.value)


def test_unknown_source(write_profile, tiny_cad) -> None:
    tiny_cad["source"] = "radio"
    msg = _error(write_profile, tiny_cad)
    assert "`source` must be one of ['cad', 'crisis', 'community']" in msg and "'radio'" in msg


def test_unknown_top_level_key(write_profile, tiny_cad) -> None:
    tiny_cad["timezon"] = "UTC"
    assert "unknown key(s) ['timezon']" in _error(write_profile, tiny_cad)


def test_unknown_contract_field_suggests_the_right_one(write_profile, tiny_cad) -> None:
    tiny_cad["fields"]["incident_typ_text"] = tiny_cad["fields"].pop("incident_type_text")
    msg = _error(write_profile, tiny_cad)
    assert "'incident_typ_text' is not a field of cad-event" in msg
    assert "did you mean 'incident_type_text'" in msg


def test_missing_required_field(write_profile, tiny_cad) -> None:
    del tiny_cad["fields"]["incident_number"]
    assert "required cad-event field(s) ['incident_number']" in _error(write_profile, tiny_cad)


def test_bad_timezone_and_enum_and_expression(write_profile, tiny_cad) -> None:
    assert "IANA zone" in _error(write_profile, {**tiny_cad, "timezone": "Central"})
    bad_enum = {**tiny_cad, "constants": {"agency_id": "MPD", "event_type": "opened"}}
    assert "'opened' is not one of" in _error(write_profile, bad_enum)
    two_forms = dict(tiny_cad, fields={**tiny_cad["fields"],
                                        "district": {"column": "a", "template": "{b}"}})
    assert "give exactly one of" in _error(write_profile, two_forms)
    bad_type = dict(tiny_cad, fields={**tiny_cad["fields"], "district": {"column": "a",
                                                                          "type": "date"}})
    assert "`type` must be one of" in _error(write_profile, bad_type)


def test_key_must_name_message_fields(write_profile, tiny_cad) -> None:
    msg = _error(write_profile, {**tiny_cad, "key": "{agency_id}:{Call Number}"})
    assert "{Call Number} is not a cad-event field" in msg


def test_lifecycle_validation(write_profile, tiny_cad) -> None:
    life = dict(tiny_cad, constants={"agency_id": "X"},
                lifecycle=[{"event_type": "dispatched", "time_column": "t", "colour": "red"}])
    assert "unknown key(s) ['colour']" in _error(write_profile, life)
    life["lifecycle"] = [{"event_type": "arrived", "time_column": "t"}]
    assert "'arrived' is not one of" in _error(write_profile, life)
    community = {"name": "c", "source": "community", "file": "c.csv", "timezone": "UTC",
                 "constants": {"agency_id": "X", "source": "311"},
                 "fields": {"report_id": "id", "category": "c", "reported_time": "t"},
                 "lifecycle": [{"event_type": "created", "time_column": "t"}]}
    assert "has no lifecycle" in _error(write_profile, community)


def test_missing_column_is_reported_when_the_file_is_opened(tmp_path, write_profile,
                                                             tiny_cad) -> None:
    (tmp_path / "tiny.csv").write_text("id,when,lat,lon,nature\n1,2018-05-01 00:00:00,,,X\n")
    prof = profiles.load(str(write_profile(tiny_cad)))
    with pytest.raises(ProfileError) as info:
        read_rows(prof, prof.data_path(tmp_path))
    msg = str(info.value)
    assert "'kind' (read by fields.incident_type_text)" in msg
    assert "columns of the file: 'id', 'when', 'lat', 'lon', 'nature'" in msg


def test_byte_order_mark_hint(tmp_path, write_profile, tiny_cad) -> None:
    (tmp_path / "tiny.csv").write_bytes(
        "id,when,lat,lon,kind\n1,2018-05-01 00:00:00,,,X\n".encode("utf-8-sig"))
    prof = profiles.load(str(write_profile(tiny_cad)))
    with pytest.raises(ProfileError, match="encoding: utf-8-sig"):
        read_rows(prof, prof.data_path(tmp_path))
    fixed = profiles.load(str(write_profile({**tiny_cad, "encoding": "utf-8-sig"})))
    assert read_rows(fixed, fixed.data_path(tmp_path))[0]["id"] == "1"


def test_yes_and_no_stay_strings_in_map_keys(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: t\nsource: crisis\nfile: t.csv\ntimezone: America/Toronto\n"
        "constants: {agency_id: TPS, status: requested}\n"
        "fields:\n  event_id: id\n  request_id: id\n  event_time: t\n"
        "  outcome: {map: {column: a, values: {Yes: apprehension, No: none}}}\n")
    outcome = next(f for f in profiles.load(str(path)).fields if f.field == "outcome")
    assert dict(outcome.values) == {"Yes": "apprehension", "No": "none"}


def test_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match="shipped profiles: milwaukee_pd_cfs"):
        profiles.load("chicago")


def test_template_parsing() -> None:
    t = Template.parse("{Call Number}-{Unit ID} {{x}}", "t")
    assert t.names == ("Call Number", "Unit ID")
    assert t.render({"Call Number": 1, "Unit ID": "E1"}) == "1-E1 {x}"
    with pytest.raises(ProfileError, match="unbalanced brace"):
        Template.parse("{a", "t")


def test_readme_example_profile_is_valid_and_maps(tmp_path) -> None:
    """The complete example of README.md loads and plays a matching CSV."""
    import re

    from streams.replay.plan import build
    from streams.replay.player import map_rows

    readme = (Path(profiles.__file__).parent / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", readme, re.S).group(1)
    example = example.replace("springfield/incidents.csv", str(tmp_path / "inc.csv"))
    (tmp_path / "p.yaml").write_text(example, encoding="utf-8")
    (tmp_path / "inc.csv").write_bytes(
        "Incident,Call Id,Unit,Call Received,Type,Type Text,Priority,Geo,Address,Battalion,"
        "Dispatched,Arrived,Cleared,Disposition\n"
        "I1,C1,E1,03/01/2024 10:00:00 PM,1,Structure fire,2,\"(39.8, -89.6)\",1 Main St,B1,"
        "2024-03-01 22:01,2024-03-01 22:05,NULL,\n"
        "I1,C1,L2,03/01/2024 10:00:00 PM,1,Structure fire,2,\"(39.8, -89.6)\",1 Main St,B1,"
        "2024-03-01 22:02,,2024-03-01 23:00,Extinguished\n".encode("utf-8-sig"))
    prof = profiles.load(str(tmp_path / "p.yaml"))
    plan = build(prof, map_rows(prof, read_rows(prof, prof.data_path(tmp_path))))
    steps = [(e.message["event_type"], e.message["event_id"]) for e in plan]
    assert steps == [("created", "I1:created"), ("dispatched", "I1-E1:dispatched"),
                     ("dispatched", "I1-L2:dispatched"), ("on_scene", "I1-E1:on_scene"),
                     ("cleared", "I1-L2:cleared")]
    first = plan.base[0].message
    assert first["incident_type_code"] == "FIRE" and first["latitude"] == 39.8
    assert first["event_time"] == "2024-03-01T22:00:00-06:00"
    assert plan.base[-1].message["disposition"] == "Extinguished"
