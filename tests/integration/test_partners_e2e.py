"""End to end with real Kafka and Redis: real data in, partners see only their share.

A worker runs every stage (ingest, correlate, kpi, publish, serve) and a gateway process
serves three partners; Milwaukee calls and Toronto crisis requests are replayed on a common
timeline.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from datetime import datetime, timezone
from typing import Any

import h3
import pytest

from agents.publish.policy import Policies
from streams.config import DEFAULTS_DIR
from streams.gateway.partners_admin import add
from streams.processes import free_port, start_gateway, stop
from streams.replay import player
from streams.replay import profile as profiles
from streams.replay.plan import Pacing
from tests.integration.conftest import drain, running_worker, wait_for

START = datetime(2024, 6, 1, 8, 0, tzinfo=timezone.utc)
POLICIES = Policies.load(DEFAULTS_DIR / "audiences.yaml")


def replay(settings, name: str, limit: int) -> int:
    prof = profiles.load(name)
    options = player.ReplayOptions(pacing=Pacing("max", 0.0), limit=limit, time_shift=START,
                                   progress=False)
    return player.replay(prof, prof.data_path(settings.shared_data_dir),
                         settings.topic(prof.source.topic.name), settings.kafka_bootstrap,
                         options).events_sent


def get(port: int, path: str, key: str, timeout_s: float = 10) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.read()


def sse_backlog(port: int, key: str, timeout_s: float = 5) -> list[dict[str, Any]]:
    """Every update in the partner's stream from its start, read until the stream is quiet."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/stream?last_event_id=0-0",
                                     headers={"Authorization": f"Bearer {key}"})
    out: list[dict[str, Any]] = []
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            for raw in response:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    out.append(json.loads(line[6:]))
    except TimeoutError:
        pass  # quiet for timeout_s: the backlog has been read
    except OSError as exc:
        if "timed out" not in str(exc):
            raise
    return out


@pytest.fixture
def deployment(topics, tmp_path):
    settings = dataclasses.replace(topics, gateway_port=free_port(), gateway_heartbeat_s=60.0)
    keys = {
        "crisis": add(settings, "mke-crisis", "crisis")[1],
        "community": add(settings, "mke-d5-watch", "community", districts=["5"])[1],
        "operator": add(settings, "rtcc-ops", "operator")[1],
    }
    with running_worker(settings, tmp_path / "worker.log") as worker:
        gateway = start_gateway(settings, tmp_path / "gateway.log")
        try:
            def ready() -> bool:
                try:
                    with urllib.request.urlopen(
                            f"http://127.0.0.1:{settings.gateway_port}/readyz", timeout=2) as r:
                        return r.status == 200
                except OSError:
                    return False

            assert wait_for(ready, timeout_s=60), (tmp_path / "gateway.log").read_text()[-3000:]
            yield settings, worker, keys
        finally:
            stop(gateway)
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


def test_each_partner_receives_only_its_share_of_a_real_replay(deployment):
    settings, worker, keys = deployment
    port = settings.gateway_port
    sent = replay(settings, "milwaukee_pd_cfs", 2500) + replay(
        settings, "toronto_persons_in_crisis", 300)
    assert wait_for(lambda: worker.metric("rtcc_events_normalised_total")
                    + worker.metric("rtcc_events_dead_lettered_total") >= sent, timeout_s=180)
    settled: list[float] = []

    def quiet() -> bool:  # no new SA update for 5 s, all of them redacted and in Redis
        settled.append(worker.metric("rtcc_sa_updates_total"))
        updates = settled[-1]
        return len(settled) > 10 and settled[-11] == updates and updates > 0 \
            and worker.metric("rtcc_audience_updates_total") >= 4 * updates \
            and "rtcc_redis_backlog_messages" in worker.metrics() \
            and worker.metric("rtcc_redis_backlog_messages") == 0

    assert wait_for(quiet, timeout_s=180)

    crisis = sse_backlog(port, keys["crisis"])
    assert crisis, "the crisis partner received nothing"
    sent_to_crisis = worker.metric("rtcc_audience_updates_total", audience="crisis",
                                   outcome="sent")
    assert len(crisis) == sent_to_crisis
    crisis_topic = drain(settings, settings.topic("rtcc.sa.audience.crisis"), until=len(crisis))
    assert sorted(u["update_id"] for u in crisis) == sorted(u["update_id"] for u in crisis_topic)
    for u in crisis:  # only mental-health incidents and crisis-team activity
        assert u["subject_kind"] == "incident"
        assert u["state"]["mental_health"] or u["state"]["crisis"], u

    community = sse_backlog(port, keys["community"])
    allowed = {f.split(".")[0] for f in POLICIES["community"].fields_of("incident")}
    operator = sse_backlog(port, keys["operator"])
    operator_state = {u["update_id"]: u["state"] for u in operator}
    assert community, "the community partner received nothing"
    for u in community:
        state = u["state"]
        if u["kind"] == "withdrawn":
            assert state is None
            continue
        assert state.get("district", "5") == "5", u
        if u["subject_kind"] == "incident":
            assert set(state) <= allowed, set(state) - allowed
            assert not {"units", "type_text", "type_code", "beat"} & set(state)
            assert not POLICIES.sensitivity.matches(state)
            if "latitude" in state:  # a cell centre, never the call's own coordinates
                centre = h3.cell_to_latlng(state["cell"])
                assert (state["latitude"], state["longitude"]) == (round(centre[0], 5),
                                                                   round(centre[1], 5))
                exact = operator_state.get(u["update_id"])
                if exact and exact.get("latitude") is not None:
                    assert (exact["latitude"], exact["longitude"]) != (state["latitude"],
                                                                       state["longitude"])
            if state.get("address_text"):
                assert "block" in state["address_text"].lower() or "/" in state["address_text"]
    assert {u["update_id"] for u in community} < set(operator_state)
    snapshot = json.loads(get(port, "/v1/snapshot", keys["community"]))
    assert {f["properties"]["state"].get("district") for f in snapshot["features"]} <= {"5"}
