"""The serving sink: each audience topic, applied to Redis exactly once, in order.

Redis keeps its own position in Kafka: the offsets of the last applied message per
partition are written by the same Lua script, atomically, as the data. So the sink needs no
consumer group and no commits: it starts where Redis says, a message applied twice (two
sinks, or a crash between Redis and anything else) is skipped by the script, and when Redis
is down the sink simply waits and retries the same batch. Stream processing never waits
for Redis: this runs beside the agents, reading topics they have already written.

If Redis comes back empty (restarted without persistence), the script reports no position
for a partition that this sink had applied: the sink rebuilds the audience from the start
of its retained topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.exceptions import RedisError

from streams import metrics, security
from streams.config import Settings
from streams.serving.layout import Keys, plan
from streams.topics import audience_topic

log = logging.getLogger(__name__)

APPLY_SCRIPT = """
-- KEYS: incident, hotspot, cluster, geo, stream, offsets, counts, counted
-- ARGV: partition, stream maxlen, then 8 arguments per op (streams/serving/layout.py Op)
local partition, maxlen = ARGV[1], ARGV[2]
local stored = tonumber(redis.call('HGET', KEYS[6], partition) or '-1')
local hashes = {incident = KEYS[1], hotspot = KEYS[2], cluster = KEYS[3]}
local last, applied = stored, 0
for i = 3, #ARGV, 8 do
  local offset = tonumber(ARGV[i])
  if offset > last then
    local action, kind, member, payload = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local lon, lat, ckey = ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
    if action == 'count' then
      local old = redis.call('HGET', KEYS[8], member)
      if old then
        if redis.call('HINCRBY', KEYS[7], old, -1) <= 0 then redis.call('HDEL', KEYS[7], old) end
      end
      if ckey ~= '' then
        redis.call('HSET', KEYS[8], member, ckey)
        redis.call('HINCRBY', KEYS[7], ckey, 1)
      else
        redis.call('HDEL', KEYS[8], member)
      end
    else
      local where = kind .. '|' .. member
      if action == 'upsert' then
        redis.call('HSET', hashes[kind], member, payload)
        if lon ~= '' then
          redis.call('GEOADD', KEYS[4], lon, lat, where)
        else
          redis.call('ZREM', KEYS[4], where)
        end
      else
        redis.call('HDEL', hashes[kind], member)
        redis.call('ZREM', KEYS[4], where)
      end
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', maxlen, '*', 'u', payload)
    end
    last, applied = offset, applied + 1
  end
end
redis.call('HSET', KEYS[6], partition, last)
return {stored, applied}
"""


def _release_wait_s(payloads: list[dict[str, Any]], now: float) -> float:
    """How long to hold a batch of a delayed audience until its last update may be seen."""
    latest = max((p.get("release_time") or "" for p in payloads), default="")
    if not latest:
        return 0.0
    release = datetime.fromisoformat(latest.replace("Z", "+00:00")).timestamp()
    return max(0.0, release - now)


class AudienceSink:
    """Applies one audience topic to Redis."""

    def __init__(self, settings: Settings, audience: str,
                 redis_client: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.audience = audience
        self.topic = settings.topic(audience_topic(audience).name)
        self.keys = Keys(settings.redis_namespace, audience)
        self.redis = redis_client or aioredis.from_url(settings.redis_url)
        self.applied: dict[int, int] = {}  # partition -> last offset this sink saw applied
        self.consumer: AIOKafkaConsumer | None = None
        self._script = self.redis.register_script(APPLY_SCRIPT)

    async def run(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
            **security.client_options(self.settings),
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024)
        await self.consumer.start()
        try:
            tps = await self._assign()
            await self._seek(tps)
            checked = time.monotonic()
            while True:
                batches = await self.consumer.getmany(
                    timeout_ms=500, max_records=self.settings.serve_batch)
                for tp, messages in batches.items():
                    if not await self._apply(tp, messages):
                        break  # rebuilding: the rest of this batch is read again
                if not batches and time.monotonic() - checked > 5.0:
                    checked = time.monotonic()
                    if self.applied and not await self._retry(
                            lambda: self.redis.exists(self.keys.offsets)):
                        await self._rebuild()  # Redis came back empty while all was quiet

                self._measure_backlog(tps)
        finally:
            await self.consumer.stop()

    async def _assign(self) -> list[TopicPartition]:
        assert self.consumer is not None
        while True:
            partitions = self.consumer.partitions_for_topic(self.topic)
            if partitions:
                break
            await self.consumer._client.force_metadata_update()  # topic created later
            partitions = self.consumer.partitions_for_topic(self.topic)
            if partitions:
                break
            log.warning("serve.%s: topic %s not found yet; waiting", self.audience, self.topic)
            await asyncio.sleep(2.0)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        return tps

    async def _seek(self, tps: list[TopicPartition]) -> None:
        """Start each partition after the last offset Redis has applied."""
        assert self.consumer is not None
        stored = await self._retry(lambda: self.redis.hgetall(self.keys.offsets))
        for tp in tps:
            offset = stored.get(str(tp.partition).encode())
            if offset is None:
                self.consumer.seek(tp, 0)
                self.applied.pop(tp.partition, None)
            else:
                self.consumer.seek(tp, int(offset) + 1)
                self.applied[tp.partition] = int(offset)
        log.info("serve.%s: starting at %s", self.audience,
                 {tp.partition: self.applied.get(tp.partition, -1) + 1 for tp in tps})

    async def _apply(self, tp: TopicPartition, messages: list[Any]) -> bool:
        """Apply one partition's messages; False when Redis was found empty and the
        audience is being rebuilt from the start of its topic."""
        payloads, ops = [], []
        for message in messages:
            if message.value is None:
                continue
            payload = orjson.loads(message.value)
            payloads.append(payload)
            ops.append(plan(message.offset, payload))
        wait = _release_wait_s(payloads, time.time())
        if wait:
            await asyncio.sleep(wait)  # a delayed audience: later messages are later still
        args: list[Any] = [tp.partition, self.settings.redis_stream_maxlen]
        for op in ops:
            args += op.args()
        last_offset = messages[-1].offset
        if not ops:  # only tombstones: just move the position
            args += [last_offset, "noop", "incident", "", b"", "", "", ""]
        stored, applied = await self._retry(lambda: self._script(keys=self.keys.all(), args=args))
        if stored == -1 and tp.partition in self.applied:
            await self._rebuild()
            return False
        self.applied[tp.partition] = max(last_offset, self.applied.get(tp.partition, -1))
        metrics.REDIS_WRITES.labels(self.audience).inc(applied)
        return True

    async def _rebuild(self) -> None:
        """Redis lost this audience's position (restarted empty): replay the topic."""
        log.warning("serve.%s: Redis has no position for applied partitions (restarted empty?); "
                    "rebuilding from the start of %s", self.audience, self.topic)
        await self._retry(lambda: self.redis.delete(*self.keys.all()))
        assert self.consumer is not None
        self.applied.clear()
        await self._seek(list(self.consumer.assignment()))

    async def _retry(self, call: Any) -> Any:
        """Redis down: wait and retry the same work, so nothing is skipped."""
        delay = 0.2
        while True:
            try:
                return await call()
            except (RedisError, OSError) as exc:
                metrics.REDIS_WRITE_ERRORS.labels(self.audience).inc()
                log.warning("serve.%s: Redis unavailable (%s); retrying in %.1f s",
                            self.audience, type(exc).__name__, delay)
                if self.consumer is not None:
                    self._measure_backlog(list(self.consumer.assignment()))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _measure_backlog(self, tps: list[TopicPartition]) -> None:
        assert self.consumer is not None
        backlog = 0
        for tp in tps:
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                backlog += max(0, highwater - self.applied.get(tp.partition, -1) - 1)
        metrics.REDIS_BACKLOG.labels(self.audience).set(backlog)


async def run_sinks(settings: Settings, audiences: list[str]) -> None:
    """One sink per audience, concurrently: a delayed audience never holds back another."""
    sinks = [AudienceSink(settings, audience) for audience in audiences]
    await asyncio.gather(*(sink.run() for sink in sinks))
