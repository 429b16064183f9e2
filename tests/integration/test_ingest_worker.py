"""A real worker ingests good and hostile messages: each ends normalised or dead-lettered."""

from __future__ import annotations

import base64

import orjson
from kafka import KafkaProducer

from tests.integration.conftest import drain, wait_for
from tests.samples import MKE_CALL, NYC_NOISE, TORONTO

HOSTILE = [
    b"{truncated",
    b"\xff\xfe\x00garbage",
    b"[]",
    orjson.dumps({**MKE_CALL, "event_time": "2100-01-01T00:00:00Z"}),
    orjson.dumps({**MKE_CALL, "latitude": 47.3744541, "longitude": -115.3772057}),
    orjson.dumps({**MKE_CALL, "event_type": "teleported"}),
    b'{"event_id": 1e999}',
]


def test_every_message_is_accounted_for(worker, topics):
    settings = topics
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    good = [("cad.events", {**MKE_CALL, "event_id": f"e{i}"}) for i in range(20)]
    good += [("crisis.events", TORONTO), ("community.reports", NYC_NOISE)]
    for name, msg in good:
        producer.send(settings.topic(name), orjson.dumps(msg), key=b"k")
    for raw in HOSTILE:
        producer.send(settings.topic("cad.events"), raw, key=b"bad")
    producer.flush()
    producer.close()

    sent = len(good) + len(HOSTILE)
    assert wait_for(lambda: worker.metric("rtcc_events_normalised_total")
                    + worker.metric("rtcc_events_dead_lettered_total") >= sent, timeout_s=60)
    normalised = [e for e in drain(settings, settings.topic("rtcc.events.normalised"),
                                   until=len(good) + int(worker.metric("rtcc_events_ghosted_total")))
                  if not e.get("ghost")]
    dead = drain(settings, settings.topic("rtcc.deadletter"), until=len(HOSTILE))

    assert len(normalised) == len(good)
    assert len(dead) == len(HOSTILE)
    assert {e["source"] for e in normalised} == {"cad", "crisis", "community"}
    # every dead letter carries its original bytes and a specific reason
    assert sorted(base64.b64decode(d["original_value_b64"]) for d in dead) == sorted(HOSTILE)
    reasons = sorted(d["reason"] for d in dead)
    assert reasons == sorted([
        "malformed_json", "not_utf8", "not_an_object", "time_out_of_range",
        "outside_service_area", "unknown_value", "malformed_json",
    ])
    assert "processing_error" not in reasons
    # and the worker counted what it did
    assert worker.metric("rtcc_events_in_total") == len(good) + len(HOSTILE)
    assert worker.metric("rtcc_events_dead_lettered_total", source="cad") == len(HOSTILE)
    assert worker.metric("rtcc_events_normalised_total", source="cad") == 20
