"""Logs at info level never carry personal data: names, phones and narratives stay out of
what the workers write, whether the message is accepted or dead-lettered."""

from __future__ import annotations

import logging
import os

import pytest

os.environ.setdefault("RTCC_TABLE_STORE", "memory://")

from tests.samples import MKE_CALL, TORONTO  # noqa: E402
from tests.unit.source_messages import message  # noqa: E402

PII = {"caller_name": "Jane PII-Roe", "caller_phone": "414-555-0199",
       "narrative": "PII-NARRATIVE caller says her neighbour Bob PII-Smith has a gun"}


@pytest.mark.parametrize("source,doc,refused", [
    ("cad", {**MKE_CALL, **PII}, False),
    ("cad", {**MKE_CALL, **PII, "event_time": "not a time"}, True),
    ("cad", {**MKE_CALL, **PII, "latitude": 10.0, "longitude": 10.0}, True),
    ("crisis", {**TORONTO, "client_name": "Jane PII-Roe", "client_phone": "416-555-0199",
                "narrative": PII["narrative"]}, False),
    ("crisis", {**TORONTO, "client_name": "Jane PII-Roe", "status": "no-such-status"}, True),
])
def test_no_personal_data_in_info_logs(caplog, source, doc, refused):
    from agents.batching import Outbox
    from agents.ingest import agents as ingest
    from streams.app import app, settings
    from streams.topics import SOURCE_TOPICS

    caplog.set_level(logging.INFO)
    topic = settings.topic(SOURCE_TOPICS[source].name)
    ingest.process(source, message(topic, doc), Outbox(app), [])
    text = caplog.text + " ".join(str(getattr(r, "__dict__", "")) for r in caplog.records)
    for value in ("PII-Roe", "555-0199", "PII-NARRATIVE", "PII-Smith"):
        assert value not in text
    # a refused message is logged (with its reason and offset), just not its content
    assert any("dead-lettered" in r.getMessage() for r in caplog.records) == refused
