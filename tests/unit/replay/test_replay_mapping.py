"""Mapping of real rows of the four public data sets, hand-checked against the CSV text,
and of dirty rows, which must still become messages."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from streams.replay import profile as profiles
from streams.replay.mapping import map_row, parse_point, parse_time
from streams.replay.plan import build
from streams.replay.player import map_rows, read_rows


def _by(rows, column, value):
    return next(r for r in rows if r[column] == value)


# --- Milwaukee -------------------------------------------------------------------------------


def test_milwaukee_first_row(real) -> None:
    # 1211372,2018-05-01 00:10:28,"5237 N 35TH ST,MKE",43.1127987,-87.95674149999999,4,
    #   TRBL W/SUBJ,Unable to Locate Complainant
    prof, rows, mapped = real("milwaukee_pd_cfs")
    assert rows[0]["id"] == "1211372"
    (event,) = mapped[0].events
    msg = event.message
    assert msg["event_id"] == msg["incident_number"] == "1211372"
    assert msg["agency_id"] == "MPD" and msg["event_type"] == "created"
    assert msg["event_time"] == "2018-05-01T00:10:28-05:00"  # CDT
    assert msg["received_time"] == msg["event_time"]
    assert msg["address_text"] == "5237 N 35TH ST,MKE"
    assert msg["latitude"] == 43.1127987 and msg["longitude"] == -87.95674149999999
    assert msg["district"] == "4"
    assert msg["incident_type_code"] == msg["incident_type_text"] == "TRBL W/SUBJ"
    assert msg["status_text"] == "Unable to Locate Complainant"
    assert msg["schema_version"] == 1
    assert event.key == "MPD:1211372"
    assert mapped[0].unparseable == ()


def test_milwaukee_row_without_coordinates_omits_them(real) -> None:
    # 1212324,2018-05-01 11:16:26,"700 N RIVERWALK WA,MKE",,,1,PARK AND WALK,...
    prof, rows, mapped = real("milwaukee_pd_cfs")
    index = rows.index(_by(rows, "id", "1212324"))
    msg = mapped[index].events[0].message
    assert "latitude" not in msg and "longitude" not in msg
    assert msg["address_text"] == "700 N RIVERWALK WA,MKE"
    assert mapped[index].unparseable == ()  # empty is not unparseable


def test_every_milwaukee_row_is_one_message(real) -> None:
    prof, rows, mapped = real("milwaukee_pd_cfs")
    plan = build(prof, mapped)
    assert plan.rows_read == len(rows) == 33_968
    assert len(plan) == 33_968
    assert len({e.message["event_id"] for e in plan.base}) == 33_968
    times = [e.at for e in plan.base]
    assert times == sorted(times)  # the file is not in time order; the replay is


# --- San Francisco Fire: lifecycle fan-out -----------------------------------------------------


def test_sf_fire_first_row_lifecycle(real) -> None:
    # 163664050,E39,16146990,Citizen Assist / Service Call,...,12/31/2016 11:57:56 PM,
    #   ...,12/31/2016 11:59:42 PM,01/01/2017 12:01:47 AM,01/01/2017 12:04:18 AM,,,Fire,
    #   01/01/2017 12:24:11 AM,0 Block of BALCETA AVE,...,B08,...,"(37.745858648581, ...)"
    prof, rows, mapped = real("sf_fire_cfs")
    events = {e.message["event_type"]: e.message for e in mapped[0].events}
    assert list(events) == ["created", "dispatched", "en_route", "on_scene", "cleared"]
    assert events["created"]["event_time"] == "2016-12-31T23:57:56-08:00"
    assert events["created"]["event_id"] == "163664050:created"
    assert "units" not in events["created"]
    assert events["dispatched"]["event_time"] == "2016-12-31T23:59:42-08:00"
    assert events["dispatched"]["event_id"] == "163664050-E39:dispatched"
    assert events["dispatched"]["units"] == ["E39"]
    assert events["en_route"]["event_time"] == "2017-01-01T00:01:47-08:00"  # 12:01:47 AM
    assert events["on_scene"]["event_time"] == "2017-01-01T00:04:18-08:00"
    assert events["cleared"]["event_time"] == "2017-01-01T00:24:11-08:00"
    assert events["cleared"]["disposition"] == "Fire"
    assert "disposition" not in events["dispatched"]
    for msg in events.values():
        assert msg["incident_number"] == "16146990"
        assert msg["received_time"] == "2016-12-31T23:57:56-08:00"
        assert msg["incident_type_text"] == "Citizen Assist / Service Call"
        assert msg["district"] == "B08"
        assert msg["latitude"] == 37.745858648581 and msg["longitude"] == -122.456664252061
        assert msg["address_text"] == "0 Block of BALCETA AVE"
    assert mapped[0].events[0].key == "SFFD:16146990"


def test_sf_fire_call_with_two_units_yields_one_created_and_one_step_per_unit(real) -> None:
    # Call 163664036 has two unit rows, E38 and AM30, each with all four unit timestamps.
    prof, rows, mapped = real("sf_fire_cfs")
    picked = [m for m, r in zip(mapped, rows) if r["Call Number"] == "163664036"]
    assert len(picked) == 2
    plan = build(prof, picked)
    kinds = Counter(e.message["event_type"] for e in plan)
    assert kinds == {"created": 1, "dispatched": 2, "en_route": 2, "on_scene": 2, "cleared": 2}
    units = sorted(e.message["units"][0] for e in plan if e.message["event_type"] == "on_scene")
    assert units == ["AM30", "E38"]
    assert [e.message["event_type"] for e in plan][0] == "created"


def test_sf_fire_fan_out_counts_for_the_largest_call(real) -> None:
    prof, rows, mapped = real("sf_fire_cfs")
    call = Counter(r["Call Number"] for r in rows).most_common(1)[0][0]
    picked_rows = [r for r in rows if r["Call Number"] == call]
    picked = [m for m, r in zip(mapped, rows) if r["Call Number"] == call]
    assert len(picked) > 10  # 170050729: 23 units
    kinds = Counter(e.message["event_type"] for e in build(prof, picked))
    present = {col: sum(1 for r in picked_rows if r[col].strip())
               for col in ("Dispatch DtTm", "Response DtTm", "On Scene DtTm", "Available DtTm")}
    assert kinds == {"created": 1, "dispatched": present["Dispatch DtTm"],
                     "en_route": present["Response DtTm"], "on_scene": present["On Scene DtTm"],
                     "cleared": present["Available DtTm"]}


def test_sf_fire_whole_file_counts(real) -> None:
    prof, rows, mapped = real("sf_fire_cfs")
    plan = build(prof, mapped)
    kinds = Counter(e.message["event_type"] for e in plan)
    assert kinds["created"] == len({r["Call Number"] for r in rows}) == 3_560
    assert kinds["dispatched"] == 7_704
    assert len({e.message["event_id"] for e in plan}) == len(plan)  # ids are unique


# --- NYC 311 ------------------------------------------------------------------------------------


def test_nyc_311_first_row(real) -> None:
    # 40611598,10/21/18 0:00,10/21/18 0:59,NYPD,...,Derelict Vehicle,With License Plate,...,
    #   73-42 68 AVENUE,...,QUEENS,...,PHONE,...,40.71051893,-73.87862009,"(...)"
    prof, rows, mapped = real("nyc_311")
    assert "Unique Key" in rows[0]  # the byte-order mark is gone
    (event,) = mapped[0].events
    msg = event.message
    assert msg["report_id"] == "40611598" and event.key == "NYC311:40611598"
    assert msg["reported_time"] == "2018-10-21T00:00:00-04:00"  # EDT
    assert msg["source"] == "311" and msg["agency_id"] == "NYC311"
    assert msg["category"] == "Derelict Vehicle" and msg["subcategory"] == "With License Plate"
    assert msg["address_text"] == "73-42 68 AVENUE" and msg["district"] == "QUEENS"
    assert msg["latitude"] == 40.71051893 and msg["longitude"] == -73.87862009


def test_nyc_311_every_channel_maps_to_311(real) -> None:
    prof, rows, mapped = real("nyc_311")
    assert {r["Open Data Channel Type"] for r in rows} == {"PHONE", "ONLINE", "MOBILE",
                                                          "UNKNOWN", "OTHER"}
    assert {m.events[0].message["source"] for m in mapped} == {"311"}
    last = mapped[-1].events[0].message  # 10/22/18 2:41: the file runs past midnight
    assert rows[-1]["Created Date"] == "10/22/18 2:41"
    assert last["reported_time"] == "2018-10-22T02:41:00-04:00"


# --- Toronto: combined date and hour; Yes/No outcome ------------------------------------------


def test_toronto_time_is_date_plus_hour(real) -> None:
    # 1,1254936,"2014-01-01",2014,"January","Wednesday",9,"Person in Crisis","D22","Yes",
    #   "No","158","Islington (158)"
    prof, rows, mapped = real("toronto_persons_in_crisis")
    requested, resolved = (e.message for e in mapped[0].events)
    assert requested["status"] == "requested" and resolved["status"] == "resolved"
    assert requested["event_time"] == resolved["event_time"] == "2014-01-01T09:00:00-05:00"
    assert requested["requested_time"] == "2014-01-01T09:00:00-05:00"
    assert requested["event_id"] == "1254936:requested" and requested["request_id"] == "1254936"
    assert resolved["event_id"] == "1254936:resolved"
    assert requested["reason_codes"] == ["Person in Crisis"]
    assert requested["district"] == "D22" and requested["neighbourhood"] == "Islington (158)"
    assert "outcome" not in requested and resolved["outcome"] == "no apprehension"
    # 2,1255246,"2014-01-01",...,11,"Suicide-related","D13","Yes","Yes",...
    assert mapped[1].events[1].message["outcome"] == "apprehension"
    assert mapped[1].events[0].message["event_time"] == "2014-01-01T11:00:00-05:00"


def test_toronto_summer_hour_has_daylight_offset(real) -> None:
    # 10681,2391689,"2014-07-01",2014,"July","Tuesday",14,"Person in Crisis","D14",...
    prof, rows, mapped = real("toronto_persons_in_crisis")
    index = rows.index(_by(rows, "event_id", "2391689"))
    assert mapped[index].events[0].message["event_time"] == "2014-07-01T14:00:00-04:00"


def test_toronto_unknown_hour_is_sent_as_written_and_counted(real) -> None:
    # 179,1270767,"2014-01-04",2014,"January","Saturday",NA,"Person in Crisis","D32",...
    prof, rows, mapped = real("toronto_persons_in_crisis")
    index = rows.index(_by(rows, "event_id", "1270767"))
    row = mapped[index]
    assert [e.message["event_time"] for e in row.events] == ["2014-01-04 NA:00"] * 2
    assert row.unparseable == ("event_time", "requested_time")
    assert "event_time" not in row.events[0].times
    plan = build(prof, mapped)
    na_rows = sum(1 for r in rows if r["event_hour"] == "NA")
    assert na_rows == 1_137
    assert plan.rows_with_unparseable == na_rows
    assert plan.unparseable == {"event_time": na_rows, "requested_time": na_rows}
    assert len(plan) == 2 * 32_000  # every row still becomes its messages


# --- Dirty rows, synthetic ---------------------------------------------------------------------


DIRTY_CSV = (
    "id,when,lat,lon,kind\n"
    "1,2018-05-01 00:00:10,43.1,-87.9,THEFT\n"
    "2,yesterday-ish,,,\n"  # unparseable time, blank lat/lon, blank kind
    "3,2018-05-01 00:00:05,forty-three,-87.9,FIRE\n"  # unparseable number
    "4,2018-05-01 00:00:20,nan,-87.9,FIRE\n"  # not finite: would be sent as null
)


def _tiny(tmp_path: Path, write_profile, data, csv_text: str = DIRTY_CSV):
    (tmp_path / "tiny.csv").write_text(csv_text, encoding="utf-8")
    prof = profiles.load(str(write_profile(data)))
    return prof, map_rows(prof, read_rows(prof, prof.data_path(tmp_path)))


def test_dirty_row_still_becomes_a_message(tmp_path, write_profile, tiny_cad) -> None:
    prof, mapped = _tiny(tmp_path, write_profile, tiny_cad)
    msg = mapped[1].events[0].message
    assert msg["event_time"] == "yesterday-ish"  # kept for the pipeline to dead-letter
    assert "latitude" not in msg and "longitude" not in msg and "incident_type_text" not in msg
    assert mapped[1].unparseable == ("event_time",)
    assert mapped[2].events[0].message["latitude"] == "forty-three"
    assert mapped[2].unparseable == ("latitude",)
    assert mapped[3].events[0].message["latitude"] == "nan"
    assert orjson.loads(orjson.dumps(mapped[3].events[0].message))["latitude"] == "nan"
    plan = build(prof, mapped)
    assert len(plan) == 4
    assert plan.rows_with_unparseable == 3
    assert plan.unparseable == {"event_time": 1, "latitude": 2}
    # The undated row keeps its file position: it follows row 1 (its predecessor in the file).
    assert [e.message["event_id"] for e in plan] == ["3", "1", "2", "4"]


def test_template_map_point_and_list_forms(tmp_path, write_profile, tiny_cad) -> None:
    data = dict(tiny_cad)
    data["fields"] = {
        "event_id": {"template": "{id}-{unit}"},
        "incident_number": "id",
        "event_time": {"template": "{day} {hour}:00", "formats": ["%Y-%m-%d %H:%M"]},
        "latitude": {"parse_point": "where"},
        "longitude": {"parse_point": "where"},
        "units": {"column": "units", "type": "list", "split": ";"},
        "priority": {"map": {"column": "prio", "values": {"1": "E", "": "none"},
                             "default": None}},
        "district": {"column": ["district", "zone"]},
    }
    csv_text = ("id,unit,day,hour,where,units,prio,district,zone\n"
                '7,E1,2018-05-01,9,"(43.0, -87.9)",E1; E2 ;,1,,Z9\n'
                "8,,2018-05-01,x,POINT (-87.5 43.5),,3,D1,Z9\n"
                "9,E3,2018-05-01,10,nowhere,,,,\n")
    prof, mapped = _tiny(tmp_path, write_profile, data, csv_text)
    first, second, third = (m.events[0].message for m in mapped)
    assert first["event_id"] == "7-E1" and first["event_time"] == "2018-05-01T09:00:00-05:00"
    assert (first["latitude"], first["longitude"]) == (43.0, -87.9)
    assert first["units"] == ["E1", "E2"]
    assert first["priority"] == "E" and first["district"] == "Z9"
    assert "event_id" not in second  # half-filled template: omitted
    assert second["event_time"] == "2018-05-01 x:00"
    assert (second["latitude"], second["longitude"]) == (43.5, -87.5)  # WKT is lon lat
    assert "priority" not in second  # unmatched, default null: omitted
    assert second["district"] == "D1"
    assert third["latitude"] == third["longitude"] == "nowhere"
    assert third["priority"] == "none"  # the "" key maps empty cells
    assert mapped[2].unparseable == ("latitude", "longitude")


def test_json_and_jsonl_exports(tmp_path, write_profile, tiny_cad) -> None:
    records = [{"id": 5, "when": "2018-05-01T00:00:00", "kind": "X",
                "geo": {"lat": 43.2, "lon": -87.8}},
               {"id": 6, "when": 1525150800000, "kind": None}]
    fields = dict(tiny_cad["fields"], latitude="geo.lat", longitude="geo.lon",
                  event_time={"column": "when", "formats": ["epoch_ms"]})
    (tmp_path / "t.json").write_bytes(orjson.dumps({"data": {"rows": records}}))
    (tmp_path / "t.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    for name, extra in (("t.json", {"records_key": "data.rows"}), ("t.jsonl", {})):
        prof = profiles.load(str(write_profile({**tiny_cad, "file": name, "fields": fields,
                                                **extra}, name=f"{name}.yaml")))
        mapped = map_rows(prof, read_rows(prof, prof.data_path(tmp_path)))
        first, second = (m.events[0].message for m in mapped)
        assert first["event_id"] == "5" and first["latitude"] == 43.2
        assert first["event_time"] == "2018-05-01T00:00:00-05:00"
        assert second["event_time"] == "2018-05-01T00:00:00-05:00"  # epoch ms, in Chicago
        assert "incident_type_text" not in second


def test_null_values(tmp_path, write_profile, tiny_cad) -> None:
    prof, mapped = _tiny(tmp_path, write_profile, {**tiny_cad, "null_values": ["N/A"]},
                         "id,when,lat,lon,kind\n1,2018-05-01 00:00:10,N/A,N/A,N/A\n")
    msg = mapped[0].events[0].message
    assert "latitude" not in msg and "incident_type_text" not in msg
    assert mapped[0].unparseable == ()


@pytest.mark.parametrize("text,expected", [
    ("(37.745858648581, -122.456664252061)", (37.745858648581, -122.456664252061)),
    ("POINT (-122.45 37.74)", (37.74, -122.45)),
    ("37.1,-122.2", (37.1, -122.2)),
    ([-73.9, 40.7], (40.7, -73.9)),
    ("(,)", None),
    ("Unspecified", None),
])
def test_parse_point(text, expected) -> None:
    assert parse_point(text) == expected


def test_parse_time_formats_in_order_then_iso() -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Los_Angeles")
    when = parse_time("01/01/2017 12:01:47 AM", ("%m/%d/%Y %I:%M:%S %p",), zone)
    assert when is not None and when.isoformat() == "2017-01-01T00:01:47-08:00"
    assert parse_time("2017-01-01T08:01:47+00:00", (), zone).isoformat() \
        == "2017-01-01T08:01:47+00:00"  # an explicit offset is kept
    assert parse_time("tomorrow", ("%Y",), zone) is None


def test_map_row_is_pure(real) -> None:
    prof, rows, mapped = real("sf_fire_cfs")
    assert map_row(prof, rows[5], 5) == map_row(prof, dict(rows[5]), 5) == mapped[5]
