"""The Redis serving sink: exactly once, in order, through Redis outages and wipes."""

from __future__ import annotations

import asyncio
import dataclasses

import orjson
import pytest
import redis.asyncio as aioredis
from kafka import KafkaProducer

from streams import metrics
from streams.serving.layout import Keys
from streams.serving.sink import AudienceSink
from tests.integration.redis_server import private_redis

AUDIENCE = "operator"


def payloads(n: int, subjects: int = 10) -> list[dict]:
    """n updates over `subjects` incidents; every third subject closes at its last update."""
    out = []
    versions: dict[str, int] = {}
    for i in range(n):
        subject = f"cad:MPD:{i % subjects}"
        versions[subject] = versions.get(subject, 0) + 1
        closing = i >= n - subjects and (i % subjects) % 3 == 0
        out.append({
            "update_id": f"u{i}", "audience": AUDIENCE, "subject_kind": "incident",
            "subject_id": subject, "version": versions[subject],
            "kind": "closed" if closing else ("opened" if versions[subject] == 1 else "updated"),
            "event_time": "2018-05-01T05:00:00Z", "changed": ["status"],
            "state": {"status": "closed" if closing else "dispatched", "seq": i,
                      "latitude": 43.0 + (i % subjects) / 100, "longitude": -87.9,
                      "district": "5"}})
    return out


def produce(settings, docs: list[dict]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    topic = settings.topic(f"rtcc.sa.audience.{AUDIENCE}")
    for doc in docs:
        producer.send(topic, key=doc["subject_id"].encode(), value=orjson.dumps(doc))
    producer.flush()
    producer.close()


async def settle(redis: aioredis.Redis, keys: Keys, stream_len: int, timeout_s: float = 30) -> None:
    for _ in range(int(timeout_s * 10)):
        try:
            if await redis.xlen(keys.stream) >= stream_len:
                return
        except Exception:  # noqa: BLE001 (Redis may be coming back)
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"stream did not reach {stream_len}")


async def check_picture(redis: aioredis.Redis, keys: Keys, docs: list[dict]) -> None:
    latest = {d["subject_id"]: d for d in docs}
    active = {s: d for s, d in latest.items() if d["kind"] != "closed"}
    stored = {k.decode(): orjson.loads(v) for k, v in (await redis.hgetall(
        keys.subjects("incident"))).items()}
    assert stored == active  # the latest update of every active subject, closed ones gone
    geo = {m.decode() for m in await redis.zrange(keys.geo, 0, -1)}
    assert geo == {f"incident|{s}" for s in active}
    entries = await redis.xrange(keys.stream)
    ids = [orjson.loads(f[b"u"])["update_id"] for _i, f in entries]
    assert sorted(ids, key=lambda u: int(u[1:])) == [d["update_id"] for d in docs]
    assert len(set(ids)) == len(ids)  # exactly once
    # per subject, the stream holds its updates in order
    for subject in latest:
        seqs = [orjson.loads(f[b"u"])["state"]["seq"] for _i, f in entries
                if orjson.loads(f[b"u"])["subject_id"] == subject]
        assert seqs == sorted(seqs)


async def run_for(sink: AudienceSink, seconds: float) -> None:
    task = asyncio.create_task(sink.run())
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_each_update_is_applied_once_even_by_two_sinks_and_restarts(topics, tmp_path):
    settings = topics
    docs = payloads(300)
    produce(settings, docs[:200])
    redis = aioredis.from_url(settings.redis_url)
    keys = Keys(settings.redis_namespace, AUDIENCE)
    try:
        first, second = AudienceSink(settings, AUDIENCE), AudienceSink(settings, AUDIENCE)
        tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
        await settle(redis, keys, 200)
        produce(settings, docs[200:])
        await settle(redis, keys, 300)
        await asyncio.sleep(1.0)  # would a duplicate arrive?
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # a restarted sink starts where Redis says and adds nothing
        await run_for(AudienceSink(settings, AUDIENCE), 2.0)
        await check_picture(redis, keys, docs)
        offsets = {int(k): int(v) for k, v in (await redis.hgetall(keys.offsets)).items()}
        assert sum(o + 1 for o in offsets.values()) == 300
    finally:
        await redis.delete(*keys.all())
        await redis.aclose()


async def test_redis_outage_holds_only_serving_and_it_catches_up(topics, tmp_path):
    server = private_redis(tmp_path / "redis")
    server.start()
    settings = dataclasses.replace(topics, redis_url=server.url)
    docs = payloads(400)
    produce(settings, docs[:150])
    redis = aioredis.from_url(settings.redis_url)
    keys = Keys(settings.redis_namespace, AUDIENCE)
    errors_before = metrics.REDIS_WRITE_ERRORS.labels(AUDIENCE)._value.get()
    sink = AudienceSink(settings, AUDIENCE)
    task = asyncio.create_task(sink.run())
    try:
        await settle(redis, keys, 150)
        server.stop()  # Redis goes away (and, without persistence, forgets everything)
        produce(settings, docs[150:])
        await asyncio.sleep(3.0)
        assert metrics.REDIS_WRITE_ERRORS.labels(AUDIENCE)._value.get() > errors_before
        assert metrics.REDIS_BACKLOG.labels(AUDIENCE)._value.get() > 0
        server.start()
        # it comes back empty: the sink notices and rebuilds the audience from the topic
        await settle(redis, keys, 400, timeout_s=60)
        await asyncio.sleep(1.0)
        await check_picture(redis, keys, docs)
        assert metrics.REDIS_BACKLOG.labels(AUDIENCE)._value.get() == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()
        server.stop()


@pytest.mark.parametrize("delay_s", [2.0])
async def test_a_delayed_audience_is_released_no_sooner_than_its_delay(topics, delay_s):
    from datetime import datetime, timedelta, timezone

    settings = topics
    release = datetime.now(timezone.utc) + timedelta(seconds=delay_s + 1)
    docs = [dict(d, release_time=release.strftime("%Y-%m-%dT%H:%M:%SZ")) for d in payloads(5)]
    produce(settings, docs)
    redis = aioredis.from_url(settings.redis_url)
    keys = Keys(settings.redis_namespace, AUDIENCE)
    sink = AudienceSink(settings, AUDIENCE)
    task = asyncio.create_task(sink.run())
    try:
        await asyncio.sleep(delay_s - 0.5)
        assert await redis.xlen(keys.stream) == 0
        await settle(redis, keys, 5, timeout_s=10)
        assert datetime.now(timezone.utc) >= release - timedelta(seconds=1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.delete(*keys.all())
        await redis.aclose()


async def test_public_counts_follow_incidents_opening_moving_and_closing(topics):
    settings = topics
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    topic = settings.topic("rtcc.sa.audience.public")

    def contribution(i: int, subject: str, status: str, cell: str = "872754e64ffffff",
                     category: str = "violent") -> dict:
        return {"update_id": f"p{i}", "audience": "public", "subject_kind": "incident",
                "subject_id": subject, "version": i, "kind": "updated", "event_time": "t",
                "aggregate": True, "changed": [],
                "state": {"district": "5", "cell": cell, "category": category, "status": status}}

    docs = [contribution(1, "incident:a", "open"), contribution(2, "incident:b", "open"),
            contribution(3, "incident:c", "open", category="sensitive", cell=None),
            contribution(4, "incident:a", "open", cell="872754e65ffffff"),  # moved
            contribution(5, "incident:b", "closed")]
    for doc in docs:
        producer.send(topic, key=doc["subject_id"].encode(), value=orjson.dumps(doc))
    producer.flush()
    producer.close()
    redis = aioredis.from_url(settings.redis_url)
    keys = Keys(settings.redis_namespace, "public")
    sink = AudienceSink(settings, "public")
    task = asyncio.create_task(sink.run())
    try:
        for _ in range(100):
            offsets = await redis.hgetall(keys.offsets)
            if sum(int(v) + 1 for v in offsets.values()) >= len(docs):
                break
            await asyncio.sleep(0.1)
        counts = {k.decode(): int(v) for k, v in (await redis.hgetall(keys.counts)).items()}
        assert counts == {"5|872754e65ffffff|violent": 1, "5||sensitive": 1}
        assert await redis.xlen(keys.stream) == 0  # counts are never streamed one by one
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.delete(*keys.all())
        await redis.aclose()
