import logging

import orjson

from streams.logs import JsonFormatter, logging_config


def _record(**extra) -> logging.LogRecord:
    record = logging.LogRecord("agents.ingest", logging.INFO, __file__, 1,
                               "dead-lettered %s", ("cad.events[0]@7",), None)
    for k, v in extra.items():
        setattr(record, k, v)
    return record


def test_one_json_object_a_line_with_the_ids():
    line = JsonFormatter().format(_record(event_id="cad:MPD:1", reason="malformed_json"))
    doc = orjson.loads(line)
    assert doc["message"] == "dead-lettered cad.events[0]@7"
    assert doc["level"] == "info" and doc["logger"] == "agents.ingest"
    assert doc["event_id"] == "cad:MPD:1" and doc["reason"] == "malformed_json"
    assert doc["time"].endswith("Z") and "\n" not in line


def test_exceptions_are_kept_in_the_object():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    doc = orjson.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in doc["exception"]


def test_text_format_keeps_fausts_own():
    assert logging_config("info", "text") is None
    assert logging_config("debug", "json")["root"]["level"] == "DEBUG"
