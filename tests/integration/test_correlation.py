"""Correlation through the real broker: every event accounted for, and replays repeatable."""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from datetime import datetime, timezone

import h3
import orjson
from kafka import KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2

from streams import admin
from streams.replay import player
from streams.replay import profile as profiles
from streams.replay.plan import Pacing, order_rows, row_times
from streams.topics import FINISHED_INCIDENTS, NORMALISED
from tests.integration.conftest import (drain, group_commits, reading_from_start,
                                        running_worker, wait_for)

PROFILES = ("milwaukee_pd_cfs", "sf_fire_cfs", "nyc_311", "toronto_persons_in_crisis")
# The data sets are from different years; a common start makes them one timeline, as live
# feeds are.
COMMON_START = datetime(2024, 6, 1, 8, 0, tzinfo=timezone.utc)


def _replay(settings, name: str, pacing: Pacing, limit: int | None = None,
            time_shift=COMMON_START) -> player.ReplaySummary:
    prof = profiles.load(name)
    options = player.ReplayOptions(pacing=pacing, limit=limit, time_shift=time_shift,
                                   progress=False)
    return player.replay(prof, prof.data_path(settings.shared_data_dir),
                         settings.topic(prof.source.topic.name), settings.kafka_bootstrap,
                         options)


def _correlated(worker) -> float:
    return worker.metric("rtcc_correlation_events_total")


def test_every_normalised_event_is_accounted_for(worker, topics):
    settings = topics
    sent = sum(_replay(settings, name, Pacing("max", 0.0), limit=600).events_sent
               for name in PROFILES)

    def settled() -> bool:
        done = worker.metric("rtcc_events_normalised_total") + worker.metric(
            "rtcc_events_dead_lettered_total")
        return done >= sent and _correlated(worker) >= worker.metric(
            "rtcc_events_normalised_total")

    assert wait_for(settled, timeout_s=180), worker.metrics()
    normalised = worker.metric("rtcc_events_normalised_total")
    # each normalised event became part of an update or a counted, named suppression
    assert _correlated(worker) == normalised
    assert worker.metric("rtcc_correlation_events_total", disposition="processing_error") == 0
    assert worker.metric("rtcc_correlation_events_total", disposition="published") > 0
    updates = drain(settings, settings.topic("rtcc.sa.updates"),
                    until=int(worker.metric("rtcc_sa_updates_total")))
    assert len(updates) == worker.metric("rtcc_sa_updates_total")
    assert {u["subject_kind"] for u in updates} >= {"incident", "cluster"}
    # a subject's versions grow by one, and no update is published twice
    assert len({u["update_id"] for u in updates}) == len(updates)
    versions: dict[str, list[int]] = {}
    for u in updates:
        versions.setdefault(u["subject_id"], []).append(u["version"])
    broken = {s: v for s, v in versions.items() if v != list(range(1, len(v) + 1))}
    assert not broken, broken
    # what on-call watches moved with it
    assert worker.metric("rtcc_end_to_end_seconds_count") >= len(updates) - worker.metric(
        "rtcc_sa_updates_total", kind="closed") - worker.metric(
        "rtcc_sa_updates_total", kind="cluster_closed") - worker.metric(
        "rtcc_sa_updates_total", kind="hotspot_closed")
    assert worker.metric("rtcc_source_last_event_timestamp_seconds", source="cad") > 1.7e9
    assert wait_for(lambda: worker.metric("rtcc_consumer_lag_messages") == 0 and
                    "rtcc_consumer_lag_messages{" in worker.metrics(), timeout_s=30)
    # (table sizes are measured every 5 s)
    assert wait_for(lambda: worker.metric("rtcc_table_keys", table="correlate-pending") == 0,
                    timeout_s=20)
    # The stateful stages ack their events at checkpoints (agents/checkpoint.py): once idle,
    # everything they read is committed. The KPI stage gets no more input, so only the
    # checkpoint timer can ack its last events.
    assert _committed_through_now(settings, [NORMALISED.name, FINISHED_INCIDENTS.name],
                                  timeout_s=20)
    # Every incident correlation closed reached the KPI stage and was measured there; they
    # travel one message per district and batch, fewer messages than incidents.
    from agents.correlate.kpi_agent import incidents_of  # here: it loads the app's tables

    finished = settings.topic(FINISHED_INCIDENTS.name)
    messages = drain(settings, finished, until=_messages_in(settings, finished))
    closed = [incident for m in messages for incident in incidents_of(m)]
    assert 0 < len(messages) < len(closed)
    assert worker.metric("rtcc_kpi_incidents_total") == len(closed)
    assert worker.metric("rtcc_kpi_incidents_total", outcome="processing_error") == 0


def _messages_in(settings, topic: str) -> int:
    with group_commits(settings) as consumer:
        return sum(consumer.end_offsets([TopicPartition(topic, p) for p in
                                         consumer.partitions_for_topic(topic)]).values())


def _committed_through_now(settings, names: list[str], timeout_s: float) -> bool:
    """The worker's group commits, within `timeout_s`, every partition of these topics up
    to the end it has now."""
    with group_commits(settings) as consumer:
        tps = [TopicPartition(settings.topic(name), p) for name in names
               for p in consumer.partitions_for_topic(settings.topic(name))]
        ends = consumer.end_offsets(tps)
        assert sum(ends.values()) > 0
        return wait_for(lambda: all((consumer.committed(tp) or 0) >= ends[tp] for tp in tps),
                        timeout_s=timeout_s)


def _deployment(settings, **changes):
    run = uuid.uuid4().hex[:8]
    return dataclasses.replace(settings, app_id=f"rtcc-eq-{run}", topic_prefix=f"eq.{run}.",
                               **changes)


def _rows_in_first_three_hours(settings, name: str) -> int:
    """Rows in the first three hours of a data set (the replay orders rows by time)."""
    prof = profiles.load(name)
    rows = order_rows(player.map_rows(prof, player.read_rows(
        prof, prof.data_path(settings.shared_data_dir))))
    times = row_times(rows)
    return sum(1 for t in times if t < times[0] + 3 * 3600)


def _send_disordered(settings, name: str, limit: int, jitter_s: float, seed: int) -> int:
    """Send a replay's messages with each one delayed by up to `jitter_s` of event time,
    as feeds from several systems arrive: out of order, within the allowed lateness."""
    prof = profiles.load(name)
    plan = player.prepare(prof, prof.data_path(settings.shared_data_dir),
                          player.ReplayOptions(limit=limit, progress=False))
    rng = random.Random(seed)
    events = list(plan)
    arrival = sorted(events, key=lambda e: e.at + rng.uniform(0, jitter_s))
    assert arrival != events
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    # Spread over a few seconds, so that the worker's watermark is moving while they come
    # (sent all at once, they would all wait in the reorder buffer for the first marks).
    for i, e in enumerate(arrival):
        key, value = player.encode(e)
        producer.send(settings.topic(prof.source.topic.name), value=value, key=key)
        if i % 20 == 19:
            time.sleep(0.1)
    producer.flush()
    producer.close()
    return len(arrival)


def _updates_of_a_replay(settings, tmp_path, pacing: Pacing | None, name: str = "milwaukee_pd_cfs",
                         jitter_s: float = 0.0) -> list[dict]:
    """The SA updates of the first three hours of a data set, replayed with `pacing`, or
    sent disordered by up to `jitter_s` when pacing is None.

    The sources must not count as idle before the replay's first events of each arrive: an
    idle source that wakes up with a flat-out burst is applied late where its events lag
    another partition's (bench/chaos.py, state scenario). The replay reads its data set
    first, which took longer than the 2 s of the suite's RTCC_IDLE_S on a busy runner."""
    settings = dataclasses.replace(settings, idle_s=10.0)
    rows = _rows_in_first_three_hours(settings, name)
    created = admin.create_topics(settings)
    try:
        with running_worker(settings, tmp_path / f"{settings.app_id}.log") as worker:
            if pacing is None:
                sent = _send_disordered(settings, name, rows, jitter_s, seed=7)
            else:
                sent = _replay(settings, name, pacing, limit=rows, time_shift=None).events_sent

            def settled() -> bool:
                normalised = worker.metric("rtcc_events_normalised_total")
                dead = worker.metric("rtcc_events_dead_lettered_total")
                return normalised + dead >= sent and \
                    _correlated(worker) >= normalised

            assert wait_for(settled, timeout_s=180), worker.metrics()
            # every event waited for its turn: none was applied out of event-time order
            assert worker.metric("rtcc_events_late_total") == 0
            return drain(settings, settings.topic("rtcc.sa.updates"),
                         until=int(worker.metric("rtcc_sa_updates_total")))
    finally:
        admin.delete_topics(settings, [o.name for o in created])


def _assert_same(a: list[dict], b: list[dict]) -> None:
    assert {u["update_id"] for u in a} == {u["update_id"] for u in b}
    final = lambda updates: {u["subject_id"]: u["state"] for u in updates}  # noqa: E731
    assert final(a) == final(b)
    # and per subject, in the same order
    per_subject = lambda updates: sorted((u["subject_id"], u["version"], u["update_id"])  # noqa: E731
                                         for u in updates)
    assert per_subject(a) == per_subject(b)


def test_a_running_feed_carries_the_marks_that_release_its_events(settings, tmp_path):
    """Progress marks ride on the events (agents/ingest/progress.py): with the timer's
    marks an hour apart, a feed that keeps coming still moves every correlation
    partition's watermark. Without the carried marks nothing is released before the
    timer's first mark, an hour later."""
    settings = _deployment(settings, mark_interval_s=3600.0)
    created = admin.create_topics(settings)
    try:
        with running_worker(settings, tmp_path / f"{settings.app_id}.log") as worker:
            time.sleep(settings.idle_s + 2.0)  # joined, and the silent sources count as idle
            sent = _replay(settings, "milwaukee_pd_cfs", Pacing("rate", 300.0), limit=1500,
                           time_shift=None).events_sent
            # the last events wait for a mark written after them, which nothing sends now
            assert wait_for(lambda: _correlated(worker) >= 0.8 * sent, timeout_s=60), \
                worker.metrics()
            assert worker.metric("rtcc_events_late_total") == 0
    finally:
        admin.delete_topics(settings, [o.name for o in created])


def test_replays_at_high_speed_and_at_max_give_the_same_updates(settings, tmp_path):
    fast = _updates_of_a_replay(_deployment(settings), tmp_path, Pacing("speed", 3600.0))
    flat_out = _updates_of_a_replay(_deployment(settings), tmp_path, Pacing("max", 0.0))
    assert len(fast) > 100
    _assert_same(fast, flat_out)


def test_disordered_lifecycles_give_the_same_updates_as_ordered_ones(settings, tmp_path):
    # SF Fire: every call has a lifecycle of several units, so the order of its events
    # shows in every intermediate update; 45 s of disorder is inside a 60 s lateness.
    settings = dataclasses.replace(settings, lateness_s=60.0)
    ordered = _updates_of_a_replay(_deployment(settings), tmp_path, Pacing("max", 0.0),
                                   name="sf_fire_cfs")
    disordered = _updates_of_a_replay(_deployment(settings), tmp_path, None,
                                      name="sf_fire_cfs", jitter_s=45.0)
    assert len(ordered) > 100
    _assert_same(ordered, disordered)


def _area_partition(point: tuple[float, float], partitions: int) -> tuple[str, int]:
    area = h3.cell_to_parent(h3.latlng_to_cell(*point, 9), 6)
    return area, (murmur2(area.encode()) & 0x7FFFFFFF) % partitions  # Kafka's default


def _across_a_partition_border(partitions: int):
    """Two Milwaukee points 40 m apart whose areas land in different partitions."""
    lat, lon = 43.0872416, -87.9146614  # 3860 N 4th St
    for step in range(20000):
        a = (lat + (step // 200) * 0.003, lon + (step % 200) * 0.00025)
        b = (a[0], a[1] + 0.0005)  # ~40 m east
        (area_a, part_a), (area_b, part_b) = (_area_partition(p, partitions) for p in (a, b))
        if area_a != area_b and part_a != part_b:
            return a, b
    raise AssertionError("no border between partitions found")


def test_a_duplicate_call_across_an_area_border_is_merged(worker, topics):
    settings = topics
    a, b = _across_a_partition_border(settings.topic_partitions)
    calls = [
        {"event_id": "b1", "incident_number": "B1", "agency_id": "MPD", "event_type": "created",
         "event_time": "2018-05-02T01:56:25-05:00", "incident_type_text": "SHOTS FIRED",
         "latitude": a[0], "longitude": a[1]},
        {"event_id": "b2", "incident_number": "B2", "agency_id": "MPD", "event_type": "created",
         "event_time": "2018-05-02T02:00:28-05:00", "incident_type_text": "SHOTS FIRED",
         "latitude": b[0], "longitude": b[1]},
    ]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for call in calls:
        producer.send(settings.topic("cad.events"), orjson.dumps(call), key=call["event_id"].encode())
    producer.flush()
    producer.close()

    assert wait_for(lambda: worker.metric("rtcc_correlation_events_total") >= 2, timeout_s=60)
    assert wait_for(lambda: worker.metric("rtcc_merges_total") >= 1, timeout_s=30)
    updates = drain(settings, settings.topic("rtcc.sa.updates"),
                    until=int(worker.metric("rtcc_sa_updates_total")), timeout_s=10)
    assert [(u["subject_id"], u["kind"]) for u in updates] == [
        ("cad:MPD:B1", "opened"), ("cad:MPD:B1", "merged")]
    assert updates[-1]["state"]["calls_merged"] == ["cad:MPD:B2"]
    assert wait_for(lambda: worker.metric("rtcc_correlation_events_total") >= 2, timeout_s=30)
    assert worker.metric("rtcc_correlation_events_total", disposition="merged_duplicate") == 1, \
        [line for line in worker.metrics().splitlines() if "rtcc_correlation" in line or "rtcc_sa" in line]
    assert worker.metric("rtcc_events_ghosted_total") >= 2


def _state_records(settings) -> list[tuple[bytes, bytes | None]]:
    """Every record of the compacted live picture so far, tombstones included."""
    with reading_from_start(settings, settings.topic("rtcc.sa.state")) as (consumer, _):
        out: list[tuple[bytes, bytes | None]] = []
        while batch := consumer.poll(timeout_ms=1000):
            out += [(r.key, r.value) for records in batch.values() for r in records]
        return out


def test_the_live_picture_keeps_each_subjects_latest_state_and_forgets_ended_ones(
        worker, topics):
    """rtcc.sa.state: a subject's last update of each batch, and a real tombstone (a record
    without a value, which compaction deletes) once the subject is forgotten."""
    settings = topics
    spot = {"agency_id": "MPD", "incident_type_text": "THEFT",
            "latitude": 43.0389, "longitude": -87.9065}
    first = {"event_id": "s1", "incident_number": "S1", "event_type": "created",
             "event_time": "2018-05-02T01:00:00-05:00", **spot}
    # Two days later in the same place: the watermark passes S1's close (RTCC_INCIDENT_TTL_S)
    # and its retention (24 h), and it is forgotten, in the batch that releases this call.
    later = {"event_id": "s2", "incident_number": "S2", "event_type": "created",
             "event_time": "2018-05-04T01:00:00-05:00", **spot}
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    for call in (first, later):
        producer.send(settings.topic("cad.events"), orjson.dumps(call),
                      key=call["event_id"].encode()).get(timeout=10)
        if call is first:
            assert wait_for(lambda: worker.metric("rtcc_sa_updates_total") >= 1, timeout_s=60)
    producer.close()
    assert wait_for(lambda: worker.metric("rtcc_sa_updates_total", kind="closed") >= 1,
                    timeout_s=60), worker.metrics()

    updates = drain(settings, settings.topic("rtcc.sa.updates"),
                    until=int(worker.metric("rtcc_sa_updates_total")), timeout_s=10)
    assert sorted((u["subject_id"], u["version"], u["kind"]) for u in updates) == [
        ("cad:MPD:S1", 1, "opened"), ("cad:MPD:S1", 2, "closed"), ("cad:MPD:S2", 1, "opened")]

    def forgotten(records) -> bool:
        return (b"cad:MPD:S1", None) in records

    assert wait_for(lambda: forgotten(_state_records(settings)), timeout_s=30)
    records = _state_records(settings)
    per_subject: dict[bytes, list[str | None]] = {}
    for key, value in records:
        per_subject.setdefault(key, []).append(
            None if value is None else orjson.loads(value)["kind"])
    # S1's closing update and its tombstone came in one batch: only the tombstone is kept.
    assert per_subject[b"cad:MPD:S1"] == ["opened", None]
    assert per_subject[b"cad:MPD:S2"] == ["opened"]
