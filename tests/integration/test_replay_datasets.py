"""Replay a slice of each real data set through the real broker and a real worker.

Every message the replay sends ends either normalised or dead-lettered (with a specific
reason), and sampled normalised events match values read by hand from the CSVs.
"""

from __future__ import annotations

import base64
import time
from collections import Counter

import pytest

from streams.replay import player
from streams.replay import profile as profiles
from streams.replay.plan import Pacing
from tests.integration.conftest import drain

ROWS = 2000


def _replay(settings, name: str) -> player.ReplaySummary:
    prof = profiles.load(name)
    options = player.ReplayOptions(pacing=Pacing("max", 0.0), limit=ROWS, progress=False)
    return player.replay(prof, prof.data_path(settings.shared_data_dir),
                         settings.topic(prof.source.topic.name), settings.kafka_bootstrap,
                         options)


def _accounted(settings, worker, sent: int) -> tuple[list[dict], list[dict]]:
    """Wait until the worker has handled every message, then read both outputs."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        done = (worker.metric("rtcc_events_normalised_total")
                + worker.metric("rtcc_events_dead_lettered_total"))
        if done >= sent:
            break
        time.sleep(0.5)
    # The topic also carries ghost copies of events near area borders (for correlation).
    written = worker.metric("rtcc_events_normalised_total") + worker.metric(
        "rtcc_events_ghosted_total")
    normalised = [e for e in drain(settings, settings.topic("rtcc.events.normalised"),
                                   until=int(written)) if not e.get("ghost")]
    dead = drain(settings, settings.topic("rtcc.deadletter"),
                 until=int(worker.metric("rtcc_events_dead_lettered_total")))
    return normalised, dead


def _by_subject(events: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in events:
        out.setdefault(e["subject_id"], []).append(e)
    return out


@pytest.mark.parametrize(
    "profile", ["milwaukee_pd_cfs", "sf_fire_cfs", "nyc_311", "toronto_persons_in_crisis"])
def test_every_replayed_row_is_accounted_for(worker, topics, profile):
    settings = topics
    summary = _replay(settings, profile)
    assert summary.rows_replayed == ROWS
    normalised, dead = _accounted(settings, worker, summary.events_sent)

    assert len(normalised) + len(dead) == summary.events_sent
    assert len({e["event_id"] for e in normalised}) == len(normalised), "duplicates"
    reasons = Counter(d["reason"] for d in dead)
    assert "processing_error" not in reasons, reasons
    assert worker.metric("rtcc_events_in_total") == summary.events_sent
    CHECKS[profile](normalised, dead, summary)


def _milwaukee(normalised, dead, summary):
    # 2000 calls, one event each; the ones geocoded far from Milwaukee are dead-lettered.
    assert summary.events_sent == ROWS
    assert dead and set(Counter(d["reason"] for d in dead)) <= {"outside_service_area",
                                                                  "invalid_coordinates"}
    calls = _by_subject(normalised)
    # id 1211372: 2018-05-01 00:10:28,"5237 N 35TH ST,MKE",43.1127987,-87.9567..,4,TRBL W/SUBJ
    [call] = calls["cad:MPD:1211372"]
    assert call["event_time"] == "2018-05-01T05:10:28Z"
    assert call["address_text"] == "5237 N 35TH ST,MKE"
    assert call["district"] == "4" and call["category"] == "disorder"
    assert abs(call["latitude"] - 43.1127987) < 1e-6
    # id 1211471 was geocoded to Idaho (47.37, -115.38): dead-lettered, not normalised
    assert "cad:MPD:1211471" not in calls
    # welfare calls carry the mental-health flag
    assert any(e["mental_health"] for e in normalised if e["type_text"] == "WELFARE CITIZEN")


def _sf_fire(normalised, dead, summary):
    # One CAD event per lifecycle column per call: far more events than rows.
    assert summary.events_sent > ROWS
    calls = _by_subject(normalised)
    # Incident 16146989 (call 163664036, E38, Medical Incident, MARINA BLVD):
    # received 12/31/2016 11:52:01 PM, on scene 01/01/2017 12:00:32 AM (Pacific).
    incident = calls["cad:SFFD:16146989"]
    assert {"created", "dispatched", "on_scene"} <= {e["kind"] for e in incident}
    e38 = {e["kind"]: e for e in incident if "E38" in e["units"]}
    assert e38["on_scene"]["event_time"] == "2017-01-01T08:00:32Z"
    assert e38["on_scene"]["received_time"] == "2017-01-01T07:52:01Z"
    assert e38["on_scene"]["category"] == "medical"
    assert not dead or set(Counter(d["reason"] for d in dead)) <= {
        "outside_service_area", "invalid_coordinates", "invalid_time", "time_out_of_range"}


def _nyc(normalised, dead, summary):
    reports = _by_subject(normalised)
    # Unique Key 40605866: 10/21/18 0:00, Noise - Vehicle, Car/Truck Music, 2760 JEROME AVENUE
    [report] = reports["report:NYC311:40605866"]
    assert report["event_time"] == "2018-10-21T04:00:00Z"
    assert report["type_code"] == "Noise - Vehicle" and report["type_text"] == "Car/Truck Music"
    assert report["district"] == "BRONX" and report["category"] == "disorder"
    # 311 rows without coordinates are still valid reports, keyed by borough
    assert all(e["area_key"] for e in normalised)
    assert {d["reason"] for d in dead} <= {"outside_service_area", "invalid_coordinates",
                                           "invalid_time", "missing_field"}


def _toronto(normalised, dead, summary):
    # Rows whose hour is "NA" (1,137 of 32,000) keep the bad time and are dead-lettered;
    # each row is two events (requested, resolved).
    assert {d["reason"] for d in dead} == {"invalid_time"}
    assert len(dead) == 2 * summary.unparseable_fields["event_time"]
    assert all(b" NA:00" in base64.b64decode(d["original_value_b64"]) for d in dead)
    requests = _by_subject(normalised)
    # objectid 2, event_id 1255246: 2014-01-01 hour 11, Suicide-related, D13.
    first = requests["crisis:TPS:1255246"][0]
    assert first["event_time"] == "2014-01-01T16:00:00Z"
    assert first["district"] == "D13" and first["mental_health"] is True
    assert first["area_key"] == "district:TPS:D13"
    assert all(e["mental_health"] for e in normalised)


CHECKS = {"milwaukee_pd_cfs": _milwaukee, "sf_fire_cfs": _sf_fire, "nyc_311": _nyc,
          "toronto_persons_in_crisis": _toronto}
