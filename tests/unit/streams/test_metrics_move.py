"""Each metric of streams/metrics.py moves when its event happens, driven through the code
that increments it (the agents' own functions on Faust's in-memory tables, the serving
sink against the real local Redis, the gateway's handlers). A meta-test fails when a
metric has no test here."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
import uuid
from types import SimpleNamespace
from typing import Any, Callable

import orjson
import pytest
from faust.types import TP
from prometheus_client import REGISTRY

from tests.unit.agent_state import checkpoint_flush  # first: the agents' tables in memory

from streams import metrics  # noqa: E402
from tests.unit.correlate import factories as f  # noqa: E402
from tests.unit.source_messages import message, near_area_border  # noqa: E402
from tests.required import unavailable  # noqa: E402

pytestmark = pytest.mark.skipif(not metrics.ENABLED, reason="RTCC_METRICS_ENABLED=false")

COVERED: set[str] = set()


def covers(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        COVERED.update(names)
        return test
    return mark


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_every_metric_has_a_test():
    from tests.unit.deploy.test_alert_rules import exposed_metrics

    assert set(exposed_metrics()) - COVERED == set(), "metrics without a test here"


# ------------------------------------------------------------------------------ ingest


@covers("rtcc_events_in_total", "rtcc_source_last_event_timestamp_seconds",
        "rtcc_events_normalised_total", "rtcc_stage_seconds", "rtcc_events_ghosted_total")
def test_ingest_counts_a_normalised_event_and_its_ghosts():
    from agents.batching import Outbox
    from agents.ingest import agents as ingest
    from streams.app import app, settings

    before = {
        "in": value("rtcc_events_in_total", source="cad"),
        "ghosts": value("rtcc_events_ghosted_total", source="cad"),
        "stage": value("rtcc_stage_seconds_count", stage="ingest.cad"),
        "norm": sum(value("rtcc_events_normalised_total", source="cad", category=c)
                    for c in ("violent", "disturbance", "other", "welfare", "property")),
    }
    started = time.time()
    out, observed = Outbox(app), []
    ingest.process("cad", message(settings.topic("cad.events"), near_area_border()), out,
                   observed)
    assert value("rtcc_events_in_total", source="cad") == before["in"] + 1
    assert value("rtcc_source_last_event_timestamp_seconds", source="cad") >= started
    assert value("rtcc_stage_seconds_count", stage="ingest.cad") == before["stage"] + 1
    assert value("rtcc_events_ghosted_total", source="cad") > before["ghosts"]
    normalised = sum(s.value for s in metrics.EVENTS_NORMALISED.collect()[0].samples
                     if s.labels["source"] == "cad")
    assert normalised >= before["norm"] + 1
    assert observed


@covers("rtcc_events_dead_lettered_total")
def test_ingest_counts_a_dead_letter_by_reason():
    from agents.batching import Outbox
    from agents.ingest import agents as ingest
    from streams.app import app, settings

    before = sum(s.value for s in metrics.EVENTS_DEAD_LETTERED.collect()[0].samples
                 if s.labels["source"] == "cad")
    ingest.process("cad", message(settings.topic("cad.events"), b"{not json"), Outbox(app), [])
    after = {s.labels["reason"]: s.value for s in metrics.EVENTS_DEAD_LETTERED.collect()[0].samples
             if s.labels["source"] == "cad"}
    assert sum(after.values()) == before + 1


# ------------------------------------------------------------------------------ correlation


def _correlated(events: list[dict[str, Any]]) -> tuple[Any, list[Any]]:
    """Apply events to a real Correlator on dict tables; the results, in order."""
    from agents.correlate.agents import CONFIG
    from agents.correlate.engine import Correlator

    finished: list[Any] = []
    engine = Correlator({}, {}, CONFIG, on_finished=finished.append)
    return engine, [engine.apply(e) for e in events]


@covers("rtcc_sa_updates_total", "rtcc_correlation_events_total", "rtcc_merges_total",
        "rtcc_links_total", "rtcc_end_to_end_seconds")
def test_correlation_publish_counts_updates_dispositions_merges_links_and_latency():
    from agents.batching import Outbox
    from agents.correlate import agents as correlate
    from streams.app import app

    here = f.HERE
    first = f.event(subject="A1", minutes=0, point=here)
    duplicate = f.event(subject="A2", minutes=1, point=f.moved(here, north_m=20))
    report = f.event(source="community", subject="R1", minutes=2,
                     point=f.moved(here, east_m=30))
    events = [first, duplicate, report]
    for e in events:
        e["source_timestamp_ms"] = int((time.time() - 2.0) * 1000)
    _engine, results = _correlated(events)
    merges = sum(r.merges for r in results)
    links = {k: sum(r.links.get(k, 0) for r in results) for r in results for k in r.links}
    assert merges >= 1 and links, "the scenario must merge and link"

    before = {
        "updates": sum(s.value for s in metrics.SA_UPDATES.collect()[0].samples),
        "disp": sum(s.value for s in metrics.CORRELATED.collect()[0].samples),
        "merges": value("rtcc_merges_total"),
        "links": {k: value("rtcc_links_total", type=k) for k in links},
        "e2e": value("rtcc_end_to_end_seconds_count"),
    }
    out = Outbox(app)
    for e, result in zip(events, results):
        correlate.publish(correlate._observe_latency(e, result), out)
    n_updates = sum(len(r.updates) for r in results)
    assert sum(s.value for s in metrics.SA_UPDATES.collect()[0].samples) == \
        before["updates"] + n_updates
    assert sum(s.value for s in metrics.CORRELATED.collect()[0].samples) == \
        before["disp"] + sum(len(r.dispositions) for r in results)
    assert value("rtcc_merges_total") == before["merges"] + merges
    for k, n in links.items():
        assert value("rtcc_links_total", type=k) == before["links"][k] + n
    assert value("rtcc_end_to_end_seconds_count") == before["e2e"] + n_updates
    assert value("rtcc_end_to_end_seconds_bucket", le="1.0") <= before["e2e"] + n_updates


@covers("rtcc_events_late_total", "rtcc_correlation_buffered_events")
def test_correlation_handle_counts_late_events_and_buffered_ones():
    from agents.batching import Outbox
    from agents.correlate import agents as correlate
    from streams.app import app

    partition = 3
    out = Outbox(app)
    now = time.time()
    recent = f.event(subject="L1", minutes=0)
    correlate.handle(partition, recent, out)
    assert value("rtcc_correlation_buffered_events", partition=str(partition)) >= 1
    # every source partition vouches for an hour later: the event is released
    later = f.BASE.timestamp() + 3600
    for origin in correlate.EXPECTED_ORIGINS:
        correlate.handle(partition, {"mark": True, "origin": origin, "max_ts": later,
                                     "last_event_wall": now, "wall": now,
                                     "caught_up": True}, out)
    assert value("rtcc_correlation_buffered_events", partition=str(partition)) == 0
    before = value("rtcc_events_late_total")
    correlate.handle(partition, f.event(subject="L2", minutes=-30), out)  # behind: late
    assert value("rtcc_events_late_total") == before + 1



def test_a_revoked_partition_leaves_the_buffered_gauge():
    """Its new owner reports it; a stale value here would show events held twice."""
    from agents.batching import Outbox
    from agents.correlate import agents as correlate
    from streams import channels
    from streams.app import app

    partition = 5
    correlate.handle(partition, f.event(subject="R1", minutes=0), Outbox(app))
    assert value("rtcc_correlation_buffered_events", partition=str(partition)) >= 1
    revoked = {TP(channels.normalised.get_topic_name(), partition)}
    asyncio.run(correlate.forget_revoked(app, revoked))
    assert REGISTRY.get_sample_value("rtcc_correlation_buffered_events",
                                     {"partition": str(partition)}) is None
    assert partition not in correlate.partitions


def test_table_sizes_count_what_a_checkpoint_wrote_to_each_table():
    """The gauge counts the engines' mirrors, not the table: they must agree."""
    from agents.batching import Outbox
    from agents.correlate import agents as correlate
    from streams.app import app
    from streams.tables import PartitionView

    measure = inspect.unwrap(correlate.measure_tables)
    asyncio.run(measure())
    before = {t.name: value("rtcc_table_keys", table=t.name) for t in correlate.TABLES}
    partition, out, now = 6, Outbox(app), time.time()
    correlate.handle(partition, f.event(subject="K1", minutes=0), out)
    correlate.handle(partition, f.event(subject="K2", minutes=1,
                                        point=f.moved(f.HERE, north_m=5_000)), out)
    asyncio.run(measure())
    assert value("rtcc_table_keys", table="correlate-pending") == before["correlate-pending"]
    checkpoint_flush(correlate.detach_partition, partition)
    asyncio.run(measure())
    stored = {t.name: sum(1 for _ in PartitionView(t, partition)) for t in correlate.TABLES}
    assert stored["correlate-pending"] == 2
    for table in correlate.TABLES:
        assert value("rtcc_table_keys", table=table.name) == \
            before[table.name] + stored[table.name], table.name
    later = f.BASE.timestamp() + 3600  # every source vouches for an hour later: released
    for origin in correlate.EXPECTED_ORIGINS:
        correlate.handle(partition, {"mark": True, "origin": origin, "max_ts": later,
                                     "last_event_wall": now, "wall": now,
                                     "caught_up": True}, out)
    checkpoint_flush(correlate.detach_partition, partition)
    asyncio.run(measure())
    assert value("rtcc_table_keys", table="correlate-pending") == before["correlate-pending"]
    incidents = sum(1 for _ in PartitionView(correlate.incidents_table, partition))
    assert incidents == 2
    assert value("rtcc_table_keys", table="correlate-incidents") == \
        before["correlate-incidents"] + incidents


@covers("rtcc_checkpoints_total")
def test_checkpoints_are_counted_by_the_way_they_are_written():
    from agents.checkpoint import Checkpoint

    left = {"to_read": 0}
    app = SimpleNamespace(consumer=SimpleNamespace(
        highwater=lambda tp: 1 + left["to_read"]))  # the held event is at offset 0
    checkpoint = Checkpoint(app, 1.0, lambda p: [], beside="auto",  # type: ignore[arg-type]
                            catching_up=10, stage="metrics-test")
    tp = TP("norm", 0)
    checkpoint.last_event[0] = SimpleNamespace(message=SimpleNamespace(tp=tp, offset=0))
    assert checkpoint.write_beside()
    left["to_read"] = 11
    assert not checkpoint.write_beside()
    assert not checkpoint.write_beside()
    assert value("rtcc_checkpoints_total", stage="metrics-test", way="beside") == 1
    assert value("rtcc_checkpoints_total", stage="metrics-test", way="in_turn") == 2


@covers("rtcc_table_keys", "rtcc_hotspots_open")
def test_table_sizes_and_open_hotspots_are_measured():
    from agents.correlate import agents as correlate
    from agents.correlate import kpi_agent

    asyncio.run(inspect.unwrap(correlate.measure_tables)())  # the timer body, once
    asyncio.run(inspect.unwrap(kpi_agent.measure_table)())
    names = {s.labels["table"] for s in metrics.TABLE_KEYS.collect()[0].samples}
    assert {correlate.incidents_table.name, kpi_agent.kpi_table.name} <= names
    assert REGISTRY.get_sample_value("rtcc_hotspots_open") is not None


@covers("rtcc_table_store_bytes")
def test_rocksdb_memory_of_a_table_is_measured(tmp_path):
    import faust

    from streams import store_memory

    rocks = faust.App("test-metrics-store", store="rocksdb://", datadir=str(tmp_path),
                      autodiscover=False)
    table = rocks.Table("metrics-store", default=None, partitions=1)
    table.data._db_for_partition(0).put(b"incident", b"x" * 10_000)
    store_memory.measure([table])
    assert value("rtcc_table_store_bytes", table="metrics-store", kind="memtables") >= 10_000
    assert REGISTRY.get_sample_value("rtcc_table_store_bytes",
                                     {"table": "metrics-store", "kind": "block_cache"}) is not None


@covers("rtcc_kpi_incidents_total", "rtcc_kpi_records_total", "rtcc_response_seconds")
def test_kpi_counts_incidents_and_records():
    from agents.batching import Outbox
    from agents.correlate import kpi_agent
    from streams.app import app
    from streams.tables import PartitionView

    def closed(n: int, minutes: float) -> dict[str, Any]:
        return {"agency_id": "MPD", "district": "4", "priority": 2, "category": "violent",
                   "subject_id": f"cad:MPD:K{n}", "mental_health": False,
                   "received_time": f.at(minutes - 30), "dispatched_time": f.at(minutes - 25),
                   "on_scene_time": f.at(minutes - 15), "closed_time": f.at(minutes),
                   "crisis_team": False}

    incidents = sum(s.value for s in metrics.KPI_INCIDENTS.collect()[0].samples)
    records = value("rtcc_kpi_records_total")
    out = Outbox(app)
    kpi_agent.add(0, closed(1, 0), out)
    assert sum(s.value for s in metrics.KPI_INCIDENTS.collect()[0].samples) == incidents + 1
    kpi_agent.add(0, closed(2, 180), out)  # three hours later: the first hour's window is done
    assert value("rtcc_kpi_records_total") > records
    # each added incident gives its dispatch (5 min) and on-scene (15 min) times
    count = REGISTRY.get_sample_value("rtcc_response_seconds_count", {
        "agency": "MPD", "district": "4", "priority": "2", "step": "on_scene"})
    total = REGISTRY.get_sample_value("rtcc_response_seconds_sum", {
        "agency": "MPD", "district": "4", "priority": "2", "step": "dispatched"})
    assert count >= 2 and total >= 2 * 300
    kpi_agent.add(0, closed(2, 180), out)  # the same incident again: not counted twice
    assert REGISTRY.get_sample_value("rtcc_response_seconds_count", {
        "agency": "MPD", "district": "4", "priority": "2", "step": "on_scene"}) == count
    # the table's size, as the checkpoint wrote it
    checkpoint_flush(kpi_agent.detach_partition, 0)
    asyncio.run(inspect.unwrap(kpi_agent.measure_table)())
    stored = sum(1 for p in kpi_agent.views for _ in PartitionView(kpi_agent.kpi_table, p))
    assert stored >= 1
    assert value("rtcc_table_keys", table=kpi_agent.kpi_table.name) == stored


def test_kpi_dead_letters_an_incident_it_fails_on():
    import base64

    from agents.batching import Outbox
    from agents.correlate import kpi_agent
    from streams import channels
    from streams.app import app

    broken = {"agency_id": "MPD", "district": "4", "subject_id": "cad:MPD:K9",
              "received_time": "not a time", "closed_time": None}
    event = SimpleNamespace(value=broken, message=message("rtcc.internal.finished", b"", 7))
    before = value("rtcc_kpi_incidents_total", outcome="processing_error")
    out = Outbox(app)
    kpi_agent.take(event, out)  # does not raise
    assert value("rtcc_kpi_incidents_total", outcome="processing_error") == before + 1
    [(topic, _, raw, *_)] = out.messages
    assert topic == channels.dead_letters.get_topic_name()
    record = orjson.loads(raw)
    assert (record["stage"], record["reason"], record["source_offset"]) == \
        ("kpi", "processing_error", 7)
    assert orjson.loads(base64.b64decode(record["original_value_b64"])) == broken


# ------------------------------------------------------------------------------ lag


@covers("rtcc_consumer_lag_messages")
def test_consumer_lag_is_highwater_minus_processed(monkeypatch):
    from streams import lag

    tp = TP("cad.events", 2)
    consumer = SimpleNamespace(assignment=lambda: {tp}, highwater=lambda _tp: 100)
    monkeypatch.setattr(lag, "app", SimpleNamespace(consumer=consumer))
    lag.processed(SimpleNamespace(topic="cad.events", partition=2, offset=59))
    asyncio.run(inspect.unwrap(lag.measure_lag)())  # the timer body, once
    assert value("rtcc_consumer_lag_messages", topic="cad.events", partition="2") == 40


# ------------------------------------------------------------------------------ producer


@covers("rtcc_produce_failures_total")
def test_a_record_the_producer_gives_up_on_is_counted_by_topic():
    from agents.batching import Outbox
    from streams import channels

    class Producer:  # Faust's producer: send() hands back the record's delivery future
        def __init__(self) -> None:
            self.deliveries: list[asyncio.Future] = []

        async def send(self, *args: Any) -> asyncio.Future:
            self.deliveries.append(asyncio.get_running_loop().create_future())
            return self.deliveries[-1]

    async def send_two(producer: Producer) -> None:
        out = Outbox(SimpleNamespace(producer=producer))
        out.add(channels.sa_updates, "s1", {"n": 1})
        out.add(channels.sa_updates, "s2", {"n": 2})
        await out.send()
        delivered, refused = producer.deliveries
        delivered.set_result(None)
        refused.set_exception(RuntimeError("KafkaTimeoutError: delivery timeout"))
        await asyncio.sleep(0)  # the done callbacks

    topic = channels.sa_updates.get_topic_name()
    before = value("rtcc_produce_failures_total", topic=topic)
    asyncio.run(send_two(Producer()))
    assert value("rtcc_produce_failures_total", topic=topic) == before + 1


# ------------------------------------------------------------------------------ publish


@covers("rtcc_audience_updates_total")
def test_publish_counts_each_audience_outcome():
    from agents.batching import Outbox
    from agents.publish import agents as publish
    from streams.app import app

    _engine, results = _correlated([f.event(subject="P1")])
    update = {**results[0].updates[0], "published_time": f.at(0)}
    before = sum(s.value for s in metrics.AUDIENCE_UPDATES.collect()[0].samples)
    publish.publish_to_audiences(update, Outbox(app))
    after = sum(s.value for s in metrics.AUDIENCE_UPDATES.collect()[0].samples)
    assert after == before + len(list(publish.policies))  # one outcome per audience


# ------------------------------------------------------------------------------ serving


class _Offsets:
    def __init__(self, offset: int, value: bytes | None) -> None:
        self.offset, self.value = offset, value


@covers("rtcc_redis_writes_total", "rtcc_redis_write_errors_total",
        "rtcc_redis_backlog_messages")
def test_serving_sink_counts_writes_errors_and_backlog():
    import redis.asyncio as aioredis
    from aiokafka import TopicPartition
    from redis.exceptions import ConnectionError as RedisConnectionError

    from streams.config import load
    from streams.serving.sink import AudienceSink

    settings = dataclasses.replace(load(), topic_prefix=f"test.metrics.{uuid.uuid4().hex[:6]}.")
    _engine, results = _correlated([f.event(subject="S1")])
    payload = {**results[0].updates[0], "published_time": f.at(0)}

    async def run() -> None:
        client = aioredis.from_url(settings.redis_url)
        try:
            await asyncio.wait_for(client.ping(), 2.0)
        except Exception:  # noqa: BLE001
            unavailable(f"no Redis at {settings.redis_url}")
        sink = AudienceSink(settings, "operator", client)
        tp = TopicPartition(sink.topic, 0)
        try:
            writes = value("rtcc_redis_writes_total", audience="operator")
            assert await sink._apply(tp, [_Offsets(0, orjson.dumps(payload))])
            assert value("rtcc_redis_writes_total", audience="operator") == writes + 1

            errors = value("rtcc_redis_write_errors_total", audience="operator")
            calls = []

            async def flaky() -> str:
                calls.append(1)
                if len(calls) == 1:
                    raise RedisConnectionError("down")
                return "ok"
            assert await sink._retry(flaky) == "ok"
            assert value("rtcc_redis_write_errors_total", audience="operator") == errors + 1

            sink.consumer = SimpleNamespace(highwater=lambda _tp: 11)
            sink._measure_backlog([tp])  # applied up to offset 0 of 11 messages
            assert value("rtcc_redis_backlog_messages", audience="operator") == 10
        finally:
            await client.delete(*sink.keys.all())
            await client.aclose()

    asyncio.run(run())


# ------------------------------------------------------------------------------ gateway


PARTNER = {"partner_id": "p-test", "audience": "community", "min_interval_s": 60,
           "key_hash": "x"}


def _entry(subject: str) -> tuple[Any, ...]:
    """A hub entry (streams/gateway/hub.py Entry): stream id, payload, place, body."""
    ms = int(time.time() * 1000) - 50
    payload = {"subject_id": subject, "subject_kind": "incident", "state": {}}
    place = {"latitude": f.HERE[0], "longitude": f.HERE[1], "category": "violent"}
    return f"{ms}-0", payload, place, orjson.dumps(payload)


@covers("rtcc_gateway_updates_delivered_total", "rtcc_gateway_delivery_seconds",
        "rtcc_gateway_updates_coalesced_total")
def test_gateway_delivery_counts_delivered_latency_and_coalesced():
    from streams.gateway.server import Delivery

    got: list[Any] = []

    async def send(entry: Any) -> None:
        got.append(entry)

    delivery = Delivery(None, PARTNER, "sse", send)  # type: ignore[arg-type]
    delivered = value("rtcc_gateway_updates_delivered_total", audience="community",
                      protocol="sse")
    observed = value("rtcc_gateway_delivery_seconds_count", protocol="sse")
    coalesced = value("rtcc_gateway_updates_coalesced_total", audience="community")
    asyncio.run(delivery.offer(_entry("s1")))
    assert len(got) == 1
    assert value("rtcc_gateway_updates_delivered_total", audience="community",
                 protocol="sse") == delivered + 1
    assert value("rtcc_gateway_delivery_seconds_count", protocol="sse") == observed + 1
    # the same subject twice more within the partner's 60 s: one replaces the other
    asyncio.run(delivery.offer(_entry("s1")))
    asyncio.run(delivery.offer(_entry("s1")))
    assert value("rtcc_gateway_updates_coalesced_total", audience="community") == coalesced + 1


@covers("rtcc_gateway_requests_total", "rtcc_audit_records_total",
        "rtcc_audit_write_failures_total")
def test_gateway_denied_request_is_counted_and_audited():
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from streams.config import load
    from streams.gateway import server
    from streams.gateway.audit import AuditLog
    from streams.gateway.registry import PartnerDirectory

    settings = load()
    app = web.Application()
    app[server.AUDIT] = AuditLog(settings)  # not started: the write fails, as when Kafka is down
    app[server.DIRECTORY] = PartnerDirectory(settings)
    request = make_mocked_request("GET", "/v1/snapshot", app=app)
    requests = value("rtcc_gateway_requests_total", endpoint="/v1/snapshot", status="401")
    records = value("rtcc_audit_records_total", action="denied", outcome="denied")
    failures = value("rtcc_audit_write_failures_total")
    with pytest.raises(web.HTTPUnauthorized):
        asyncio.run(server.authenticate(request, "/v1/snapshot"))
    assert value("rtcc_gateway_requests_total", endpoint="/v1/snapshot",
                 status="401") == requests + 1
    assert value("rtcc_audit_records_total", action="denied", outcome="denied") == records + 1
    assert value("rtcc_audit_write_failures_total") == failures + 1


@covers("rtcc_gateway_connections")
def test_gateway_sse_connection_is_counted_while_open(monkeypatch):
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from streams.config import load
    from streams.gateway import server
    from streams.gateway.audit import AuditLog

    seen: list[float] = []

    class Hub:
        def subscribe(self) -> tuple[Any, str]:
            seen.append(value("rtcc_gateway_connections", audience="community",
                              protocol="sse"))
            queue: asyncio.Queue = asyncio.Queue()
            queue.put_nowait(None)  # cut off at once
            return SimpleNamespace(queue=queue), "0-0"

        def unsubscribe(self, sub: Any) -> None:
            pass

    async def authenticate(request: Any, endpoint: str) -> dict[str, Any]:
        return PARTNER

    monkeypatch.setattr(server, "authenticate", authenticate)

    async def run() -> None:
        app = web.Application()
        app[server.SETTINGS] = load()
        app[server.AUDIT] = AuditLog(app[server.SETTINGS])
        app[server.HUBS] = {"community": Hub()}
        app.router.add_get("/v1/stream", server.stream)
        before = value("rtcc_gateway_connections", audience="community", protocol="sse")
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/v1/stream")
            await response.read()
        assert seen == [before + 1]
        assert value("rtcc_gateway_connections", audience="community", protocol="sse") == before

    asyncio.run(run())


# ------------------------------------------------------------------------------ README


def metrics_table() -> str:
    """The README's "On call: metrics" table, rendered from streams/metrics.py:
    .venv/bin/python -c "from tests.unit.streams.test_metrics_move import metrics_table as t; print(t())"
    """
    rows = ["| metric | type | labels | what it counts |", "|---|---|---|---|"]
    for obj in vars(metrics).values():
        kind = getattr(obj, "_type", None)
        if not hasattr(obj, "_name") or kind not in ("counter", "gauge", "histogram"):
            continue
        name = obj._name + ("_total" if kind == "counter" else "")
        labels = ", ".join(obj._labelnames) or "-"
        doc = " ".join(obj._documentation.split()).replace("|", "/")
        rows.append(f"| `{name}` | {kind} | {labels} | {doc} |")
    return "\n".join(rows)


def test_readme_metrics_table_is_in_sync():
    from streams.config import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- metrics-table: generated -->\n", "\n<!-- /metrics-table -->"
    assert start in readme and end in readme, "README.md has no generated metrics table"
    table = readme.split(start, 1)[1].split(end, 1)[0]
    assert table == metrics_table(), "README metrics table is stale; regenerate it:\n" + \
        metrics_table()
