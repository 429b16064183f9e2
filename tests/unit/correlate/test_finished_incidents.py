"""Closed incidents go from correlation to the KPI stage one message per district and batch,
and the KPI stage measures each incident in them as it did one message each.

Driven through the agents' own functions (the engine of a partition's state, `send_finished`,
the KPI agent's `take`) on Faust's in-memory tables.
"""

from __future__ import annotations

import base64
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.types import TP
from faust.types.tuples import Message

from tests.unit.agent_state import checkpoint_flush  # noqa: F401  first: tables in memory

from streams import metrics  # noqa: E402
from tests.unit.correlate import factories as f  # noqa: E402

PARTITION = 11  # of the normalised topic; no other test in this process uses it
KPI_PARTITION = 5  # of the finished-incidents topic; likewise


def _close(engine: Any, subject: str, district: str, minutes: float) -> None:
    engine.apply(f.event(subject=subject, kind="created", minutes=minutes, district=district))
    engine.apply(f.event(subject=subject, kind="closed", minutes=minutes + 40,
                         district=district))


def _finished_messages(out: Any) -> list[tuple[str, dict[str, Any]]]:
    from streams import channels

    topic = channels.finished_incidents.get_topic_name()
    return [(key.decode(), orjson.loads(value)) for name, key, value, *_ in out.messages
            if name == topic]


def _kpi_event(value: Any, offset: int) -> SimpleNamespace:
    tp = TP("rtcc.internal.finished-incidents", KPI_PARTITION)
    return SimpleNamespace(value=value, message=Message(
        tp.topic, KPI_PARTITION, offset, time.time(), 0, [], b"k", orjson.dumps(value), None,
        tp=tp))


def _kpi_outcomes() -> dict[str, float]:
    return {s.labels["outcome"]: s.value for s in metrics.KPI_INCIDENTS.collect()[0].samples
            if s.name.endswith("_total")}


@pytest.fixture
def correlation():
    from agents.batching import Outbox
    from agents.correlate import agents as correlate
    from streams.app import app

    state = correlate.state_of(PARTITION)
    yield correlate, state, Outbox(app)
    correlate.partitions.pop(PARTITION, None)


def test_a_batch_sends_one_message_per_district_with_its_incidents_in_order(correlation):
    correlate, state, out = correlation
    _close(state.engine, "A1", "4", 0)
    _close(state.engine, "B1", "7", 1)
    _close(state.engine, "A2", "4", 2)
    assert [s["subject_id"] for s in state.finished] == ["cad:MPD:A1", "cad:MPD:B1",
                                                         "cad:MPD:A2"]
    correlate.send_finished(out)
    sent = _finished_messages(out)
    assert [(key, [s["subject_id"] for s in value["incidents"]]) for key, value in sent] == [
        ("MPD/4", ["cad:MPD:A1", "cad:MPD:A2"]), ("MPD/7", ["cad:MPD:B1"])]
    assert state.finished == []
    correlate.send_finished(out)  # nothing closed since: nothing more
    assert len(_finished_messages(out)) == 2


def test_a_district_with_more_incidents_than_a_message_holds_gets_several(
        correlation, monkeypatch):
    correlate, state, out = correlation
    monkeypatch.setattr(correlate, "FINISHED_PER_MESSAGE", 2)
    for n in range(5):
        _close(state.engine, f"C{n}", "4", n)
    correlate.send_finished(out)
    sent = _finished_messages(out)
    assert [len(value["incidents"]) for _, value in sent] == [2, 2, 1]
    assert [s["subject_id"] for _, value in sent for s in value["incidents"]] == [
        f"cad:MPD:C{n}" for n in range(5)]


def test_the_kpi_stage_measures_every_incident_of_a_message_and_the_old_single_form(
        correlation):
    from agents.batching import Outbox
    from agents.correlate import kpi_agent
    from streams.app import app

    correlate, state, out = correlation
    for n in range(3):
        _close(state.engine, f"D{n}", "4", 60 * n)
    single = dict(state.finished[-1])
    correlate.send_finished(out)
    [(_, batch)] = _finished_messages(out)
    before = _kpi_outcomes()
    kpi_out = Outbox(app)
    kpi_agent.take(_kpi_event(batch, 0), kpi_out)
    after = _kpi_outcomes()
    assert after.get("added", 0) - before.get("added", 0) == 3
    # a worker of the previous version sent one summary per message: still measured (here
    # the same incident again, which the aggregator recognises)
    kpi_agent.take(_kpi_event(single, 1), kpi_out)
    again = _kpi_outcomes()
    assert sum(again.values()) - sum(after.values()) == 1
    assert again.get("added", 0) == after.get("added", 0)


def test_an_incident_the_kpi_stage_fails_on_is_dead_lettered_alone(correlation):
    from agents.batching import Outbox
    from agents.correlate import kpi_agent
    from streams import channels
    from streams.app import app

    correlate, state, out = correlation
    _close(state.engine, "E1", "4", 0)
    _close(state.engine, "E2", "4", 300)
    correlate.send_finished(out)
    [(_, batch)] = _finished_messages(out)
    broken = {"agency_id": "MPD", "district": "4", "subject_id": "cad:MPD:E9",
              "received_time": "not a time", "closed_time": None}
    batch["incidents"].insert(1, broken)
    before = _kpi_outcomes()
    kpi_out = Outbox(app)
    kpi_agent.take(_kpi_event(batch, 9), kpi_out)  # does not raise
    after = _kpi_outcomes()
    assert after.get("added", 0) - before.get("added", 0) == 2
    assert after.get("processing_error", 0) - before.get("processing_error", 0) == 1
    dead = [orjson.loads(value) for name, _, value, *_ in kpi_out.messages
            if name == channels.dead_letters.get_topic_name()]
    assert len(dead) == 1
    assert (dead[0]["stage"], dead[0]["source_offset"]) == ("kpi", 9)
    assert orjson.loads(base64.b64decode(dead[0]["original_value_b64"])) == broken
