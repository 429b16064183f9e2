"""Structured logs: one JSON object a line, with the ids an on-call engineer searches by.

Personal data never goes into a log line: messages name events by id and topic offset,
never by caller, phone or narrative.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import orjson

# Extra fields a log call may pass (`log.info(..., extra={"event_id": ...})`).
CONTEXT_FIELDS = ("event_id", "subject_id", "source", "reason", "topic", "partition", "offset",
                  "stage")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def logging_config(level: str, fmt: str) -> dict[str, Any] | None:
    """A logging.config dict for the worker; None keeps Faust's own (coloured text)."""
    if fmt != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": level.upper(), "handlers": ["default"]},
    }
