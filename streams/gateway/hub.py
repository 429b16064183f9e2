"""One reader of an audience's Redis Stream per gateway process, fanned out to connections.

A connection that resumes from a Last-Event-ID first registers for live entries (everything
after the hub's position H), then reads (Last-Event-ID, H] from Redis: between the two,
every entry arrives exactly once. Registration and dispatch never await in between, so no
entry can fall into the gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from streams.serving.layout import Keys, is_ending

log = logging.getLogger(__name__)

# (stream id, payload, the place to judge the partner's scope by, the payload's JSON bytes:
# serialised once for every connection)
Entry = tuple[str, dict[str, Any], dict[str, Any] | None, bytes]
LOCATING_FIELDS = ("district", "latitude", "longitude", "category", "priority")


def stream_id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[Entry | None]
    overflowed: bool = False


@dataclass
class SubjectIndex:
    """Where each live subject was last seen, so that a withdrawn or closing update (which
    may carry no place) reaches exactly the partners whose scope held the subject."""

    limit: int = 200_000
    places: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)

    def observe(self, payload: dict[str, Any]) -> None:
        subject, state = payload["subject_id"], payload.get("state")
        if state:
            self.places[subject] = {k: state.get(k) for k in LOCATING_FIELDS}
            self.places.move_to_end(subject)
            while len(self.places) > self.limit:
                self.places.popitem(last=False)

    def place_of(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The state to judge scope by: the payload's own, else where it was last seen."""
        state = payload.get("state")
        known = self.places.get(payload["subject_id"])
        if state and (state.get("latitude") is not None or state.get("district") is not None):
            return state
        if known is None:
            return state
        return {**known, **(state or {})}

    def forget_if_ended(self, payload: dict[str, Any]) -> None:
        if is_ending(payload):
            self.places.pop(payload["subject_id"], None)


class AudienceHub:
    def __init__(self, redis: aioredis.Redis, keys: Keys, queue_size: int = 10_000) -> None:
        self.redis = redis
        self.keys = keys
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.index = SubjectIndex()
        self.position = "0-0"  # last stream id dispatched
        self.running = asyncio.Event()

    def subscribe(self) -> tuple[Subscriber, str]:
        """Register for live entries; returns the subscriber and the hub's position H."""
        sub = Subscriber(asyncio.Queue(self.queue_size))
        self.subscribers.add(sub)
        return sub, self.position

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def backlog(self, after: str, upto: str) -> tuple[list[Entry], bool]:
        """Entries in (after, upto], and whether some were trimmed from the stream already
        (the caller must then reload the snapshot)."""
        try:
            info = await self.redis.xinfo_stream(self.keys.stream)
        except ResponseError:  # no stream yet: nothing was written, nothing trimmed
            return [], False
        trimmed_upto = (info.get("max-deleted-entry-id") or b"0-0")
        trimmed_upto = trimmed_upto.decode() if isinstance(trimmed_upto, bytes) else trimmed_upto
        gap = stream_id_key(after) < stream_id_key(trimmed_upto)
        entries: list[Entry] = []
        if stream_id_key(upto) > stream_id_key(after):
            for raw_id, fields in await self.redis.xrange(self.keys.stream, f"({after}", upto):
                payload = orjson.loads(fields[b"u"])
                entries.append((raw_id.decode(), payload, self.index.place_of(payload),
                                fields[b"u"]))
        return entries, gap

    async def seed(self) -> None:
        """Start at the stream's end, knowing where the live subjects are."""
        last = await self.redis.xrevrange(self.keys.stream, count=1)
        self.position = last[0][0].decode() if last else "0-0"
        for kind in ("incident", "hotspot", "cluster"):
            for raw in (await self.redis.hgetall(self.keys.subjects(kind))).values():
                self.index.observe(orjson.loads(raw))

    async def run(self) -> None:
        while True:
            try:
                if not self.running.is_set() and self.position == "0-0":
                    await self.seed()  # after an outage, go on from where dispatch stopped
                self.running.set()
                while True:
                    reply = await self.redis.xread({self.keys.stream: self.position},
                                                   count=1000, block=1000)
                    for _stream, entries in reply or ():
                        self._dispatch([(i.decode(), f[b"u"]) for i, f in entries])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self.running.clear()
                log.warning("gateway: %s stream unavailable (%s); retrying",
                            self.keys.audience, type(exc).__name__)
                await asyncio.sleep(1.0)

    def _dispatch(self, raw: list[tuple[str, bytes]]) -> None:
        entries: list[Entry] = []
        for entry_id, body in raw:
            payload = orjson.loads(body)
            entries.append((entry_id, payload, self.index.place_of(payload), body))
            self.index.observe(payload)
            self.index.forget_if_ended(payload)
        self.position = entries[-1][0]
        for sub in list(self.subscribers):
            for entry in entries:
                try:
                    sub.queue.put_nowait(entry)
                except asyncio.QueueFull:
                    # A client too slow to keep up is cut off; it resumes from its last id.
                    sub.overflowed = True
                    self.subscribers.discard(sub)
                    sub.queue = asyncio.Queue(1)
                    sub.queue.put_nowait(None)
                    break
