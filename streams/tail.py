"""`rtcc tail TOPIC`: print a live topic readably, for an operator at a terminal."""

from __future__ import annotations

import base64
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, TextIO

import orjson
from kafka import KafkaConsumer, TopicPartition

from agents.ingest.progress import is_mark
import streams.kafka_python_fix  # noqa: F401  (a refused login's answer is not lost)
from streams import security
from streams.config import Settings


@dataclass(frozen=True)
class Condition:
    """`field=value` (or `field!=value`); dotted paths reach into nested objects."""

    path: tuple[str, ...]
    value: str
    negate: bool = False

    @classmethod
    def parse(cls, text: str) -> "Condition":
        negate = "!=" in text
        field, sep, value = text.partition("!=" if negate else "=")
        if not sep or not field:
            raise ValueError(f"filter {text!r} is not field=value or field!=value")
        return cls(tuple(field.split(".")), value, negate)

    def matches(self, doc: Any) -> bool:
        for part in self.path:
            doc = doc.get(part) if isinstance(doc, dict) else None
        if isinstance(doc, list):
            hit = self.value in [str(v) for v in doc]
        elif isinstance(doc, bool):
            hit = str(doc).lower() == self.value.lower()
        else:
            hit = doc is not None and str(doc) == self.value
        return hit != self.negate


def _short(value: Any, width: int = 40) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def render(doc: Any, fields: list[str] | None = None) -> str:
    """One readable line for the known record shapes, compact JSON otherwise."""
    if not isinstance(doc, dict):
        return _short(doc, 200)
    if fields:
        return "  ".join(f"{f}={_short(doc.get(f))}" for f in fields)
    if "source" in doc and "subject_id" in doc and "category" in doc:  # normalised event
        flag = " MH" if doc.get("mental_health") else ""
        return (f"{doc.get('event_time')}  {doc.get('source'):9} {_short(doc.get('kind'), 10):10} "
                f"{doc.get('subject_id')}  {doc.get('category')} p{doc.get('priority')}{flag}  "
                f"{_short(doc.get('type_text') or doc.get('type_code'), 30)}  "
                f"{_short(doc.get('address_text') or doc.get('district'), 30)}")
    if "reason" in doc and "original_value_b64" in doc:  # dead letter
        raw = base64.b64decode(doc.get("original_value_b64") or "")
        preview = raw[:60].decode("utf-8", "replace")
        return (f"{doc.get('failed_time')}  DEAD  {doc.get('reason')}"
                f"{'(' + doc['field'] + ')' if doc.get('field') else ''}  "
                f"{doc.get('source_topic')}[{doc.get('source_partition')}]@"
                f"{doc.get('source_offset')}  {_short(doc.get('detail'), 50)}  | {preview!r}")
    if "update_id" in doc and "subject_id" in doc:  # SA update
        state = doc.get("state") or {}
        where = state.get("address_text") or state.get("district") or state.get("area") or ""
        return (f"{doc.get('event_time')}  {doc.get('kind'):17} {doc.get('subject_id')} "
                f"v{doc.get('version')}  {_short(state.get('category'), 13):13} "
                f"{_short(doc.get('reason'), 50)}  {_short(where, 30)}")
    return orjson.dumps(doc).decode()


def _decode(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:200].decode("utf-8", "replace")


def messages(settings: Settings, topic: str, from_beginning: bool,
             idle_timeout_s: float | None = None) -> Iterator[tuple[Any, Any, Any]]:
    """(partition, offset, value) of a topic, without joining a consumer group."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        enable_auto_commit=False,
        group_id=None,
        client_id=f"{settings.app_id}-tail",
        **security.client_options(settings),
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise SystemExit(f"tail: topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        (consumer.seek_to_beginning if from_beginning else consumer.seek_to_end)(*tps)
        last = time.monotonic()
        while True:
            batch = consumer.poll(timeout_ms=500)
            for records in batch.values():
                for rec in records:
                    yield rec.partition, rec.offset, _decode(rec.value)
            if batch:
                last = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                return
    finally:
        consumer.close()


def tail(settings: Settings, topic: str, from_beginning: bool, conditions: list[Condition],
         fields: list[str] | None, as_json: bool, limit: int | None,
         idle_timeout_s: float | None, out: TextIO = sys.stdout, show_marks: bool = False) -> int:
    shown = 0
    for partition, offset, doc in messages(settings, topic, from_beginning, idle_timeout_s):
        if is_mark(doc) and not show_marks:
            continue
        if not all(c.matches(doc) for c in conditions):
            continue
        line = orjson.dumps(doc).decode() if as_json else render(doc, fields)
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        out.write(line + "\n" if as_json else f"{stamp} p{partition}@{offset}  {line}\n")
        out.flush()
        shown += 1
        if limit is not None and shown >= limit:
            break
    return shown
