"""Thousands of good and hostile messages through a real worker: none lost, none stuck.

The cases are tests/fuzz_cases.py's (truncated JSON, non-UTF-8 bytes, oversized messages,
duplicated keys, NaN coordinates, dates in 1900 and 2100, unknown enums, ... and good real
messages), sent to the three source topics of an isolated deployment. The pure `ingest`
says what must become of each; the worker must then have put each message, identified by its
topic, partition and offset, exactly there: on the normalised topic, or on the dead-letter
topic with that reason and its original key and bytes. The worker must still be alive and
have read every source partition to its end (lag 0, offsets committed): no stuck partition.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from collections import Counter
from pathlib import Path

import orjson
from kafka import KafkaProducer, TopicPartition

from agents.ingest.dead_letters import MAX_KEPT_KEY_BYTES, MAX_KEPT_VALUE_BYTES
from agents.ingest.normalise import IngestPolicy, Origin, ingest
from agents.ingest.rejection import Rejected
from streams.config import Settings
from streams.topics import SOURCE_TOPICS
from tests.fuzz_cases import ACCEPT, SOURCES, Case, cases, seeds
from tests.integration.conftest import drain, group_commits, running_worker, wait_for

CASES_PER_SOURCE = 1_000
# Just under the broker's default message.max.bytes (1 MiB): bigger than any limit of ours,
# and as big as a producer can send. Its dead letter (base64) is bigger than the message.
NEAR_BROKER_LIMIT = 1_000_000
GIANT_KEY = 600_000

Position = tuple[str, int, int]  # topic, partition, offset


def _expected(source: str, raw: bytes | None, policy: IngestPolicy) -> str:
    try:
        ingest(source, raw, policy, Origin("oracle", 0, 0))
        return ACCEPT
    except Rejected as rejected:
        return rejected.reason


def _key(i: int, case: Case) -> bytes | None:
    """Most messages are keyed, some not (a tombstone must be); one key is giant."""
    if case.mutation == "giant_key":
        return b"K" * GIANT_KEY
    return None if i % 7 == 0 and case.raw is not None else f"k{i}".encode()


def _produce(settings: Settings, batch: list[Case]) -> dict[Position, tuple[Case, bytes | None]]:
    """Send every case; where each landed."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                             max_request_size=2 * NEAR_BROKER_LIMIT, linger_ms=20)
    try:
        futures = []
        for i, case in enumerate(batch):
            key = _key(i, case)
            topic = settings.topic(SOURCE_TOPICS[case.source].name)
            futures.append((case, key, producer.send(topic, case.raw, key=key)))
        producer.flush(timeout=60)
        placed = {}
        for case, key, future in futures:
            meta = future.get(timeout=30)
            placed[(meta.topic, meta.partition, meta.offset)] = (case, key)
        return placed
    finally:
        producer.close()


def _committed_to_end(settings: Settings) -> bool:
    """The worker's group has committed every source partition up to its end offset."""
    with group_commits(settings) as consumer:
        sources = {settings.topic(spec.name) for spec in SOURCE_TOPICS.values()}
        tps = [TopicPartition(t, p) for t in sources for p in consumer.partitions_for_topic(t)]
        ends = consumer.end_offsets(tps)
        return all(consumer.committed(tp) == ends[tp] for tp in tps)


def test_hostile_messages_end_normalised_or_dead_lettered(topics: Settings, tmp_path: Path):
    settings = topics
    policy = IngestPolicy.from_settings(settings)
    batch: list[Case] = []
    for source in SOURCES:
        good = seeds(source, policy, settings.shared_data_dir, rows=60)
        batch += cases(source, good, policy, CASES_PER_SOURCE, seed="rtcc-fuzz-it")
        # One message of each source as large as the broker takes.
        huge = orjson.dumps({**good[0], "x_padding": ""})
        huge = huge[:-2] + b"p" * (NEAR_BROKER_LIMIT - len(huge)) + b'"}'
        batch.append(Case(source, "near_broker_limit", huge, "oversized"))
        batch.append(Case(source, "giant_key", b"{truncated", "malformed_json"))
    expected = {id(case): _expected(case.source, case.raw, policy) for case in batch}
    for case in batch:
        if case.expect is not None:
            assert expected[id(case)] == case.expect, case.describe()
    n_good = sum(1 for label in expected.values() if label == ACCEPT)
    n_bad = len(batch) - n_good
    assert n_good >= 500 and n_bad >= 1500, (n_good, n_bad)

    # Stages: ingest only. Correlation of the accepted cases is not what is tested here (its
    # random event times span 25 years), and it would share the two cores with ingest.
    settings = dataclasses.replace(settings, stages="ingest")
    with running_worker(settings, tmp_path / "worker.log") as worker:
        started = time.monotonic()
        placed = _produce(settings, batch)
        assert len(placed) == len(batch)

        assert wait_for(lambda: worker.metric("rtcc_events_normalised_total")
                        + worker.metric("rtcc_events_dead_lettered_total") >= len(batch),
                        timeout_s=90), worker.metrics()
        processed_s = time.monotonic() - started
        # No stuck partition: lag 0 everywhere, offsets committed to the end, still alive.
        assert wait_for(lambda: _committed_to_end(settings), timeout_s=30)
        assert wait_for(lambda: all(
            value == 0 for labels, value in _lag_samples(worker).items()), timeout_s=15)
        assert worker.process.poll() is None, "the worker died"
        assert worker.metric("rtcc_events_in_total") == len(batch)

        ghosts = int(worker.metric("rtcc_events_ghosted_total"))
        normalised = [e for e in drain(settings, settings.topic("rtcc.events.normalised"),
                                       until=n_good + ghosts, timeout_s=60)
                      if not e.get("ghost")]
        dead = drain(settings, settings.topic("rtcc.deadletter"), until=n_bad, timeout_s=60)

    want_good = {pos for pos, (case, _) in placed.items() if expected[id(case)] == ACCEPT}
    got_good = Counter((e["source_topic"], e["source_partition"], e["source_offset"])
                       for e in normalised)
    assert set(got_good) == want_good, (
        f"missing {len(want_good - set(got_good))}, unexpected {len(set(got_good) - want_good)}")
    assert max(got_good.values()) == 1, "an event normalised twice"

    got_dead = {(d["source_topic"], d["source_partition"], d["source_offset"]): d for d in dead}
    assert len(got_dead) == len(dead) == n_bad
    assert set(got_dead) == set(placed) - want_good
    reasons: Counter[str] = Counter()
    for pos, record in got_dead.items():
        case, key = placed[pos]
        assert record["reason"] == expected[id(case)], (record, case.describe())
        # Whole, or (beyond what one Kafka message can carry as base64) its first part.
        value = case.raw or b""
        assert base64.b64decode(record["original_value_b64"]) == value[:MAX_KEPT_VALUE_BYTES]
        assert (len(value) > MAX_KEPT_VALUE_BYTES) == ("original_value_b64 holds the first"
                                                       in (record["detail"] or ""))
        assert record["original_key_b64"] == (
            None if key is None else base64.b64encode(key[:MAX_KEPT_KEY_BYTES]).decode())
        assert record["stage"] == f"ingest.{case.source}"
        reasons[record["reason"]] += 1
    assert "processing_error" not in reasons
    for reason in ("oversized", "not_utf8", "malformed_json", "wrong_type", "time_out_of_range",
                   "invalid_coordinates", "unknown_value"):
        assert reasons[reason] > 0, reasons
    print(f"\n{len(batch)} messages ({n_good} good, {n_bad} bad) processed in "
          f"{processed_s:.1f} s; dead letters by reason: {dict(reasons)}")


def _lag_samples(worker) -> dict[str, float]:
    from streams.processes import scrape_metrics

    return scrape_metrics(worker.port).get("rtcc_consumer_lag_messages", {})
