"""The partner gateway against real Kafka (registry, audit) and real Redis (serving layer).

Audience updates are written to their Kafka topics and applied by the real serving sink;
the gateway runs in-process (aiohttp's test server) so that the tests can drop and resume
connections at chosen moments.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, WSMsgType
from aiohttp.test_utils import TestServer
from kafka import KafkaProducer

from streams.gateway.partners_admin import add, revoke
from streams.gateway.server import DIRECTORY, create_app
from streams.serving.layout import Keys
from streams.serving.sink import AudienceSink
from tests.integration.conftest import drain
from tests.unit.publish.test_cap import assert_valid as cap_valid
from tests.unit.publish.test_cap import escalating, may_20, xsd  # noqa: F401 (fixtures)
from tests.unit.publish.test_cap import references as cap_references
from tests.unit.publish.test_cap import text as cap_text
from tests.unit.publish.test_eido import assert_valid, validator  # noqa: F401 (fixture)

MKE = (43.05, -87.95)


def update(i: int, audience: str, subject: str, district: str = "5", *, lat: float | None = None,
           kind: str | None = None, version: int = 1, **state: Any) -> dict[str, Any]:
    base = {"status": "dispatched", "category": "violent", "priority": 2, "district": district,
            "latitude": MKE[0] if lat is None else lat, "longitude": MKE[1],
            "times": {"received": "2018-05-01T05:00:00Z"}, "seq": i}
    base.update(state)
    return {"update_id": f"u{i}", "audience": audience, "subject_kind": "incident",
            "subject_id": subject, "version": version,
            "kind": kind or ("opened" if version == 1 else "updated"),
            "event_time": "2018-05-01T05:00:00Z", "published_time": "2026-11-29T10:00:00Z",
            "changed": ["status"], "state": base}


class Feed:
    """Writes audience updates to Kafka; the sinks put them into Redis."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                      acks="all", linger_ms=2)

    def send(self, doc: dict[str, Any]) -> None:
        topic = self.settings.topic(f"rtcc.sa.audience.{doc['audience']}")
        self.producer.send(topic, key=doc["subject_id"].encode(), value=orjson.dumps(doc))

    def flush(self) -> None:
        self.producer.flush()


@pytest.fixture
async def gateway(topics) -> AsyncIterator[dict[str, Any]]:
    settings = topics
    partners = {
        "ops": add(settings, "ops", "operator"),
        "comm5": add(settings, "comm5", "community", districts=["5"]),
        "crisis": add(settings, "crisis", "crisis"),
        "slow": add(settings, "slow", "operator", min_interval_s=1.0),
        "gone": add(settings, "gone", "community"),
    }
    revoke(settings, "gone")
    sinks = [asyncio.create_task(AudienceSink(settings, a).run())
             for a in ("operator", "community", "crisis")]
    app = create_app(settings)
    server = TestServer(app)
    await server.start_server()
    for _ in range(300):
        if app[DIRECTORY].ready.is_set() and (app[DIRECTORY].get("gone") or {}).get("revoked_time"):
            break
        await asyncio.sleep(0.1)
    session = ClientSession(base_url=str(server.make_url("")))
    feed = Feed(settings)
    try:
        yield {"settings": settings, "url": server.make_url(""), "session": session,
               "keys": {p: key for p, (_record, key) in partners.items()}, "feed": feed,
               "app": app}
    finally:
        await session.close()
        await server.close()
        for task in sinks:
            task.cancel()
        await asyncio.gather(*sinks, return_exceptions=True)
        redis = aioredis.from_url(settings.redis_url)
        for audience in ("operator", "community", "crisis", "public"):
            await redis.delete(*Keys(settings.redis_namespace, audience).all())
        await redis.aclose()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def wait_stream(settings, audience: str, length: int, timeout_s: float = 30) -> None:
    redis = aioredis.from_url(settings.redis_url)
    try:
        for _ in range(int(timeout_s * 10)):
            try:
                if await redis.xlen(Keys(settings.redis_namespace, audience).stream) >= length:
                    return
            except Exception:  # noqa: BLE001
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"{audience} stream did not reach {length}")
    finally:
        await redis.aclose()


async def sse_events(response) -> AsyncIterator[tuple[str, str, dict[str, Any] | None]]:
    """(id, event, data) of each SSE event of a response."""
    event_id, event, data = "", "message", []
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line == "":
            if data:
                yield event_id, event, orjson.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])


async def test_wrong_or_missing_keys_get_401_and_other_scopes_403_all_audited(gateway):
    s, keys = gateway["session"], gateway["keys"]
    assert (await s.get("/v1/snapshot")).status == 401
    assert (await s.get("/v1/snapshot", headers=auth("rtcc.ops.not-the-key"))).status == 401
    assert (await s.get("/v1/snapshot", headers=auth("garbage"))).status == 401
    assert (await s.get("/v1/stream", headers=auth(keys["gone"]))).status == 401  # revoked
    denied = await s.get("/v1/snapshot?audience=operator", headers=auth(keys["comm5"]))
    assert denied.status == 403
    assert (await s.get("/v1/snapshot?audience=community", headers=auth(keys["comm5"]))).status == 200
    assert (await s.get("/healthz")).status == 200
    ready = await s.get("/readyz")
    assert ready.status == 200 and (await ready.json())["registry"] is True
    records = drain(gateway["settings"], gateway["settings"].topic("rtcc.audit"), until=100,
                    timeout_s=5)
    denials = [r for r in records if r["action"] == "denied"]
    assert len(denials) == 5
    assert {r["outcome"] for r in denials} == {"denied"}
    assert all(r["client_address"] == "127.0.0.1" and r["time"] for r in denials)
    assert {r["partner_id"] for r in denials} == {None, "gone", "comm5"}
    assert any(r["action"] == "snapshot" and r["partner_id"] == "comm5" for r in records)
    assert {r["action"] for r in records} >= {"registry_add", "registry_revoke"}
    # keys never reach the audit trail
    blob = orjson.dumps(records).decode()
    assert not any(key.split(".")[2] in blob for key in keys.values())


async def test_snapshot_and_stream_hold_only_what_the_partners_filters_admit(gateway):
    settings, s, feed, keys = (gateway["settings"], gateway["session"], gateway["feed"],
                               gateway["keys"])
    for i in range(20):
        feed.send(update(i, "community", f"cad:MPD:{i}", district="5" if i % 2 else "7"))
    feed.flush()
    await wait_stream(settings, "community", 20)
    body = await (await s.get("/v1/snapshot", headers=auth(keys["comm5"]))).json()
    assert body["type"] == "FeatureCollection"
    assert {f["properties"]["state"]["district"] for f in body["features"]} == {"5"}
    assert len(body["features"]) == 10
    assert all(f["geometry"]["type"] == "Point" for f in body["features"])
    narrow = await (await s.get("/v1/snapshot?bbox=-88.0,43.0,-87.9,43.01",
                                headers=auth(keys["comm5"]))).json()
    assert narrow["features"] == []  # inside the scope, outside the requested box
    response = await s.get("/v1/stream", headers={**auth(keys["comm5"]), "Last-Event-ID": "0-0"})
    seen = []
    async for _id, event, data in sse_events(response):
        seen.append(data["state"]["district"])
        if len(seen) == 10:
            break
    response.close()
    assert seen == ["5"] * 10


async def test_sse_resume_after_a_dropped_connection_delivers_every_update_exactly_once(gateway):
    settings, s, feed, keys = (gateway["settings"], gateway["session"], gateway["feed"],
                               gateway["keys"])
    total = 600

    async def publish() -> None:
        for i in range(total):
            feed.send(update(i, "operator", f"cad:MPD:{i % 40}", version=i // 40 + 1))
            if i % 20 == 19:
                feed.flush()
                await asyncio.sleep(0.05)
        feed.flush()

    producer = asyncio.create_task(publish())
    received: list[str] = []
    last_id = "0-0"
    drops = 0
    while len(received) < total:
        response = await s.get("/v1/stream", headers={**auth(keys["ops"]),
                                                       "Last-Event-ID": last_id})
        assert response.status == 200
        async for event_id, event, data in sse_events(response):
            assert event == "update"
            received.append(data["update_id"])
            last_id = event_id
            if len(received) in (50, 200, 420) and drops < 3:
                drops += 1
                break  # the dashboard's network drops here
            if len(received) == total:
                break
        response.close()
        await asyncio.sleep(0.3)  # updates keep coming while it is away
    await producer
    assert drops == 3
    assert len(received) == total and len(set(received)) == total
    assert sorted(received, key=lambda u: int(u[1:])) == [f"u{i}" for i in range(total)]


async def test_a_partners_minimum_interval_is_honoured_and_the_newest_state_wins(gateway):
    settings, s, feed, keys = (gateway["settings"], gateway["session"], gateway["feed"],
                               gateway["keys"])
    response = await s.get("/v1/stream", headers=auth(keys["slow"]))
    arrivals: dict[str, list[tuple[float, int]]] = {}

    async def read() -> None:
        async for _id, _event, data in sse_events(response):
            arrivals.setdefault(data["subject_id"], []).append(
                (time.monotonic(), data["state"]["seq"]))

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.5)
    last_seq = {}
    for i in range(60):  # 3 subjects, an update every 0.05 s: 20 per subject in 3 s
        subject = f"cad:MPD:{i % 3}"
        feed.send(update(i, "operator", subject, version=i // 3 + 1))
        feed.flush()
        last_seq[subject] = i
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.5)
    reader.cancel()
    response.close()
    for subject, seen in arrivals.items():
        gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:])]
        assert all(g >= 0.95 for g in gaps), (subject, gaps)
        assert seen[-1][1] == last_seq[subject]  # the newest state was delivered
        assert len(seen) < 20  # intermediate states were coalesced
    assert set(arrivals) == set(last_seq)


async def test_eido_websocket_subscribe_event_acknowledge(gateway, validator):  # noqa: F811
    settings, s, feed, keys = (gateway["settings"], gateway["session"], gateway["feed"],
                               gateway["keys"])
    ws = await s.ws_connect("/v1/eido", headers=auth(keys["crisis"]))
    await ws.send_str(orjson.dumps({"subscribe": {"requestId": "r1", "requestType": "CAD"}}).decode())
    refused = orjson.loads((await ws.receive()).data)
    assert refused["subscribeResponse"]["statusCode"] == 400
    await ws.send_str(orjson.dumps({"subscribe": {"requestId": "r2", "requestType": "EIDO",
                                                  "requestSubType": "new"}}).decode())
    accepted = orjson.loads((await ws.receive()).data)["subscribeResponse"]
    assert accepted["statusCode"] == 200 and accepted["requestId"] == "r2"
    subscription = accepted["subscriptionId"]
    for i in range(5):
        feed.send(update(i, "crisis", f"cad:MPD:{i}", category="mental_health",
                         mental_health=True, type_text="EDP", incident_number=str(i),
                         agency_id="MPD", address_text="5237 N 35TH ST"))
    feed.flush()
    events = []
    while len(events) < 5:
        message = await asyncio.wait_for(ws.receive(), 20)
        assert message.type in (WSMsgType.TEXT, WSMsgType.BINARY)
        doc = orjson.loads(message.data)
        event = doc["event"]
        assert event["subscriptionId"] == subscription
        events.append(event)
        await ws.send_str(orjson.dumps({"eventResponse": {
            "subscriptionId": subscription, "transactionId": event["transactionId"],
            "statusCode": 200}}).decode())
    assert assert_valid(validator, [e["notification"][0] for e in events]) == 5
    await ws.send_str(orjson.dumps({"unsubscribe": {"requestId": "r3",
                                                    "subscriptionId": subscription}}).decode())
    done = orjson.loads((await ws.receive()).data)["unsubscribeResponse"]
    assert done["statusCode"] == 200
    await ws.close()


async def test_cap_stream_carries_a_hotspots_alert_update_cancel_thread(gateway, xsd, escalating):  # noqa: F811
    from agents.publish.policy import Policies
    from agents.publish.redact import redact
    from streams.config import DEFAULTS_DIR

    policies = Policies.load(DEFAULTS_DIR / "audiences.yaml")
    s, feed, keys = gateway["session"], gateway["feed"], gateway["keys"]
    thread = [redact(u, policies["community"], policies.sensitivity).payload for u in escalating]
    assert [u["kind"] for u in thread] == ["hotspot_opened", "hotspot_escalated", "hotspot_closed"]
    key = add(gateway["settings"], "public-alerts", "community")[1]
    await wait_registry(gateway["app"], "public-alerts")
    response = await s.get("/v1/cap", headers=auth(key))
    assert response.status == 200
    alerts: list[str] = []

    async def read() -> None:
        event, data = None, []
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                alerts.append("\n".join(data))
                data = []

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.5)
    for payload in thread:
        feed.send(payload)
    feed.send(update(99, "community", "cad:MPD:99"))  # incidents never travel as CAP
    feed.flush()
    for _ in range(200):
        if len(alerts) >= 3:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    reader.cancel()
    response.close()
    assert cap_valid(xsd, alerts) == 3
    assert [cap_text(a, "cap:msgType") for a in alerts] == ["Alert", "Update", "Cancel"]
    first_id = cap_text(alerts[0], "cap:identifier")
    assert [r[1] for r in cap_references(alerts[1])] == [first_id]
    assert [r[1] for r in cap_references(alerts[2])] == [
        first_id, cap_text(alerts[1], "cap:identifier")]
    assert cap_references(alerts[2])[1][2] == cap_text(alerts[1], "cap:sent")


async def wait_registry(app, partner_id: str) -> None:
    for _ in range(300):
        if app[DIRECTORY].get(partner_id):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{partner_id} never reached the gateway's registry")
