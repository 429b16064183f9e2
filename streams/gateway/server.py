"""The partner HTTP gateway: snapshot, live SSE stream, STA-024 WebSocket, dashboard.

A small aiohttp application in its own process, not Faust's web server: it must scale and
redeploy independently of the stream workers (a gateway joining the workers' consumer group
would rebalance stream processing on every deploy), it holds thousands of long-lived
connections, and aiohttp (already under Faust) speaks SSE and WebSocket natively. It reads
only Redis (the serving layer) and the partner registry topic; it writes only audit records.

Every request is authenticated with the partner's API key; audience and filters come from
the registry, never from the request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.publish.partners import Coalescer, Scope, key_matches, partner_id_of
from agents.publish.policy import Policies
from streams import metrics
from streams.config import Settings, load
from streams.gateway.audit import AuditLog
from streams.gateway.hub import AudienceHub, Entry, stream_id_key
from streams.gateway.registry import PartnerDirectory
from streams.logs import logging_config
from streams.serving.layout import Keys

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
SUBJECT_KINDS = ("incident", "hotspot", "cluster")
MAX_PER_WRITE = 1000  # updates taken from a connection's queue before one socket write

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", aioredis.Redis)
DIRECTORY = web.AppKey("directory", PartnerDirectory)
HUBS = web.AppKey("hubs", dict)
AUDIT = web.AppKey("audit", AuditLog)
TASKS = web.AppKey("tasks", list)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _key_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    # EventSource cannot set headers: browsers pass the key as a query parameter.
    return request.headers.get("X-API-Key") or request.query.get("access_token") or None


async def authenticate(request: web.Request, endpoint: str) -> dict[str, Any]:
    """The caller's registry record, or 401 (who are you?) / 403 (not yours), audited."""
    audit, directory = request.app[AUDIT], request.app[DIRECTORY]
    client = request.remote
    key = _key_of(request)
    partner = directory.get(partner_id_of(key) or "") if key else None

    async def deny(status: int, why: str, who: dict[str, Any] | None) -> web.HTTPException:
        await audit.record("denied", endpoint, "denied", partner=who, client=client, detail=why)
        metrics.GATEWAY_REQUESTS.labels(endpoint, str(status)).inc()
        error = web.HTTPUnauthorized if status == 401 else web.HTTPForbidden
        return error(body=orjson.dumps({"error": why}), content_type="application/json",
                     headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)

    if not key:
        raise await deny(401, "missing API key", None)
    if partner is None or not key_matches(key, partner["key_hash"]):
        raise await deny(401, "unknown or wrong API key", None)
    if partner.get("revoked_time"):
        raise await deny(401, "partner revoked", partner)
    requested = request.query.get("audience")
    if requested and requested != partner["audience"]:
        raise await deny(403, f"audience {requested!r} is outside this partner's scope", partner)
    requested_partner = request.match_info.get("partner_id")
    if requested_partner and requested_partner != partner["partner_id"]:
        raise await deny(403, "another partner's scope", partner)
    return partner


# --- health --------------------------------------------------------------------------------

async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    checks = {"registry": app[DIRECTORY].ready.is_set(),
              "streams": all(h.running.is_set() for h in app[HUBS].values())}
    try:
        checks["redis"] = bool(await asyncio.wait_for(app[REDIS].ping(), 2.0))
    except Exception:  # noqa: BLE001 (any failure means not ready)
        checks["redis"] = False
    ready = all(checks.values())
    return _json({"ready": ready, **checks}, 200 if ready else 503)


async def metrics_page(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


# --- snapshot ------------------------------------------------------------------------------

def feature(payload: dict[str, Any]) -> dict[str, Any]:
    """A subject as a GeoJSON Feature: its boundary or point, and its payload as properties."""
    state = payload.get("state") or {}
    geometry = None
    if isinstance(state.get("boundary"), dict):
        geometry = state["boundary"]
    elif state.get("latitude") is not None and state.get("longitude") is not None:
        geometry = {"type": "Point", "coordinates": [state["longitude"], state["latitude"]]}
    return {"type": "Feature", "id": payload["subject_id"], "geometry": geometry,
            "properties": payload}


def _bbox_param(raw: str | None) -> tuple[float, float, float, float] | None:
    if not raw:
        return None
    values = tuple(float(v) for v in raw.split(","))
    if len(values) != 4 or values[0] >= values[2] or values[1] >= values[3]:
        raise ValueError("bbox: min_lon,min_lat,max_lon,max_lat")
    return values  # type: ignore[return-value]


async def snapshot(request: web.Request) -> web.Response:
    partner = await authenticate(request, "/v1/snapshot")
    audience = partner["audience"]
    keys = Keys(request.app[SETTINGS].redis_namespace, audience)
    try:
        narrow = _bbox_param(request.query.get("bbox"))
    except ValueError as exc:
        metrics.GATEWAY_REQUESTS.labels("/v1/snapshot", "400").inc()
        return _json({"error": str(exc)}, 400)
    redis = request.app[REDIS]
    # One transaction: the stream position matches the state exactly, so a client that
    # resumes the stream from `stream_id` misses nothing and sees nothing twice.
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xrevrange(keys.stream, count=1)
        for kind in SUBJECT_KINDS:
            pipe.hgetall(keys.subjects(kind))
        pipe.hgetall(keys.counts)
        last, *hashes, counts = await pipe.execute()
    scope = Scope.of(partner)
    wanted = set(request.query.getall("kind", SUBJECT_KINDS))
    narrow_scope = Scope(bbox=narrow) if narrow else None
    features = []
    for kind, subjects in zip(SUBJECT_KINDS, hashes):
        if kind not in wanted:
            continue
        for raw in subjects.values():
            payload = orjson.loads(raw)
            state = payload.get("state")
            if scope.admits(state) and (narrow_scope is None or narrow_scope.admits(state)):
                features.append(feature(payload))
    body: dict[str, Any] = {
        "type": "FeatureCollection", "audience": audience, "features": features,
        "stream_id": last[0][0].decode() if last else "0-0",
    }
    if counts:
        body["counts"] = sorted(
            ({"district": d or None, "cell": c or None, "category": cat, "count": int(n)}
             for (d, c, cat), n in ((k.decode().split("|"), v) for k, v in counts.items())),
            key=lambda row: (str(row["district"]), str(row["cell"]), row["category"]))
        if scope.districts:
            body["counts"] = [r for r in body["counts"] if r["district"] in scope.districts]
    await request.app[AUDIT].record("snapshot", "/v1/snapshot", "ok", partner=partner,
                                    client=request.remote, detail=f"{len(features)} features")
    metrics.GATEWAY_REQUESTS.labels("/v1/snapshot", "200").inc()
    return _json(body)


# --- live delivery, shared by SSE and WebSocket ---------------------------------------------

FINAL_KINDS = frozenset({"closed", "hotspot_closed", "cluster_closed", "withdrawn"})


class Delivery:
    """One connection's view of its audience hub: scope, rate limit, and resume."""

    def __init__(self, hub: AudienceHub, partner: dict[str, Any], protocol: str,
                 send: Callable[[Entry], Awaitable[None]], min_interval_s: float | None = None,
                 incident_only: bool = False) -> None:
        self.hub, self.partner, self.protocol, self.send = hub, partner, protocol, send
        self.scope = Scope.of(partner)
        interval = float(partner.get("min_interval_s") or 0.0)
        self.coalescer = Coalescer(max(interval, min_interval_s or 0.0))
        self.incident_only = incident_only
        # Subjects this connection has been sent and that are still live: their later
        # updates follow them out of the partner's area (a closing that moved). A subject's
        # last update (closed, withdrawn) ends it here, so the set stays as large as the
        # live picture, not as the connection's history (dashboards stay connected all night).
        self.delivered: set[str] = set()
        self.audience = partner["audience"]

    def admits(self, entry: Entry) -> bool:
        _id, payload, place, _body = entry
        if payload.get("aggregate"):
            return False
        if self.incident_only and payload["subject_kind"] != "incident":
            return False
        return self.scope.admits(place) or payload["subject_id"] in self.delivered

    async def offer(self, entry: Entry) -> None:
        if not self.admits(entry):
            return
        before = self.coalescer.superseded
        for item in self.coalescer.offer(entry[1]["subject_id"], entry, time.monotonic()):
            await self._send(item)  # type: ignore[arg-type]
        if self.coalescer.superseded > before:
            metrics.GATEWAY_RATE_LIMITED.labels(self.audience).inc(
                self.coalescer.superseded - before)

    async def flush_due(self) -> None:
        for item in self.coalescer.due(time.monotonic()):
            await self._send(item)  # type: ignore[arg-type]
        self.coalescer.forget_older_than(time.monotonic() - self.coalescer.min_interval_s)

    def wait_s(self, heartbeat_s: float) -> float:
        due = self.coalescer.next_due()
        if due is None:
            return heartbeat_s
        return max(0.01, min(heartbeat_s, due - time.monotonic()))

    async def _send(self, entry: Entry) -> None:
        await self.send(entry)
        payload = entry[1]
        if payload.get("kind") in FINAL_KINDS:
            self.delivered.discard(payload["subject_id"])
        else:
            self.delivered.add(payload["subject_id"])
        metrics.GATEWAY_DELIVERED.labels(self.audience, self.protocol).inc()
        ms, _seq = stream_id_key(entry[0])
        metrics.GATEWAY_DELIVERY_SECONDS.labels(self.protocol).observe(
            max(0.0, time.time() - ms / 1000.0))

    def start(self) -> None:
        """Register with the hub now: every entry after this moment will be delivered."""
        self._registration = self.hub.subscribe()

    async def run(self, resume_from: str | None, on_reset: Callable[[], Awaitable[None]],
                  heartbeat: Callable[[], Awaitable[None]], heartbeat_s: float,
                  flush: Callable[[], Awaitable[None]] | None = None) -> None:
        """Deliver from `resume_from` (exclusive) or from registration, until the end.

        Whatever is queued is taken at once and `flush` is called once after it: one
        socket write per wake-up instead of one per update, which is what lets one process
        serve hundreds of connections."""
        if getattr(self, "_registration", None) is None:
            self.start()
        sub, upto = self._registration
        try:
            if resume_from:
                backlog, gap = await self.hub.backlog(resume_from, upto)
                if gap:
                    await on_reset()
                for entry in backlog:
                    await self.offer(entry)
                if flush is not None:
                    await flush()
            while True:
                try:
                    entry = await asyncio.wait_for(sub.queue.get(), self.wait_s(heartbeat_s))
                except asyncio.TimeoutError:
                    await self.flush_due()
                    if flush is not None:
                        await flush()
                    await heartbeat()
                    continue
                for _ in range(MAX_PER_WRITE):
                    if entry is None:
                        if flush is not None:
                            await flush()
                        return  # too slow: cut off; the client resumes from its last id
                    await self.offer(entry)
                    if sub.queue.empty():
                        break
                    entry = sub.queue.get_nowait()
                await self.flush_due()
                if flush is not None:
                    await flush()
        finally:
            self.hub.unsubscribe(sub)


def _resume_id(request: web.Request) -> str | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if raw is None:
        return None
    if not STREAM_ID.match(raw):
        raise web.HTTPBadRequest(body=orjson.dumps({"error": "bad Last-Event-ID"}),
                                 content_type="application/json")
    return raw


async def _serve_sse(request: web.Request, endpoint: str,
                     render: Callable[[dict[str, Any]], bytes | None] | None,
                     subjects: tuple[str, ...] = SUBJECT_KINDS) -> web.StreamResponse:
    """An SSE connection of one partner: resume, scope, rate limit, heartbeats, audit."""
    partner = await authenticate(request, endpoint)
    resume_from = _resume_id(request)
    audience = partner["audience"]
    settings, audit = request.app[SETTINGS], request.app[AUDIT]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")

    pending: list[bytes] = []

    async def send(entry: Entry) -> None:
        entry_id, payload, _place, body = entry
        if payload["subject_kind"] not in subjects:
            return
        try:
            if render is not None:  # else the payload's JSON, as stored
                body = render(payload)
        except Exception:  # noqa: BLE001 (one unrenderable update must not end the stream)
            log.exception("gateway: cannot render %s for %s", payload.get("update_id"), endpoint)
            return
        if body is None:
            return
        data = b"".join(b"data: " + line + b"\n" for line in body.split(b"\n"))
        pending.append(b"id: " + entry_id.encode() + b"\nevent: update\n" + data + b"\n")

    async def flush() -> None:
        if pending:
            chunk = b"".join(pending)
            pending.clear()
            await response.write(chunk)

    async def reset() -> None:
        await flush()
        await response.write(b"event: reset\ndata: {\"reason\": \"resume point trimmed: "
                             b"reload the snapshot\"}\n\n")

    async def heartbeat() -> None:
        await flush()
        await response.write(b": keepalive\n\n")

    delivery = Delivery(request.app[HUBS][audience], partner, "sse", send)
    metrics.GATEWAY_CONNECTIONS.labels(audience, "sse").inc()
    metrics.GATEWAY_REQUESTS.labels(endpoint, "200").inc()
    await audit.record("connect", endpoint, "ok", partner=partner, client=request.remote,
                       detail=f"resume from {resume_from}" if resume_from else None)
    try:
        await delivery.run(resume_from, reset, heartbeat, settings.gateway_heartbeat_s, flush)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        metrics.GATEWAY_CONNECTIONS.labels(audience, "sse").dec()
        await audit.record("disconnect", endpoint, "ok", partner=partner, client=request.remote)
    return response


async def stream(request: web.Request) -> web.StreamResponse:
    """Every update in the partner's scope, as JSON (schemas/json/audience-update)."""
    return await _serve_sse(request, "/v1/stream", None)


async def cap_stream(request: web.Request) -> web.StreamResponse:
    """Hotspots and clusters in the partner's scope as CAP 1.2 alerts: Alert, Update, and
    Cancel, each referencing the earlier alerts of its thread sent on this connection."""
    from agents.publish.cap import alert_reference, hotspot_to_cap

    sender = request.app[SETTINGS].cap_sender
    sent: dict[str, list[tuple[str, str]]] = {}

    def render(payload: dict[str, Any]) -> bytes | None:
        if payload.get("state") is None and payload["kind"] != "withdrawn":
            return None
        history = sent.setdefault(payload["subject_id"], [])
        xml = hotspot_to_cap(payload, sender, previous=list(history) or None)
        history.append(alert_reference(payload))
        return xml.encode()

    return await _serve_sse(request, "/v1/cap", render, subjects=("hotspot", "cluster"))


async def areas(request: web.Request) -> web.Response:
    """The service areas' own geometry, for maps drawn without an external tile server."""
    await authenticate(request, "/v1/areas")
    from streams.gateway.geometry import service_area_features

    return _json(service_area_features(request.app[SETTINGS]))


async def dashboard(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "dashboard.html")


# --- the application -------------------------------------------------------------------

def create_app(settings: Settings) -> web.Application:
    from streams.gateway.sta024 import eido_socket

    app = web.Application()
    app[SETTINGS] = settings
    app[REDIS] = aioredis.from_url(settings.redis_url)
    app[DIRECTORY] = PartnerDirectory(settings)
    audiences = [p.name for p in Policies.load(settings.audiences_file)]
    app[HUBS] = {a: AudienceHub(app[REDIS], Keys(settings.redis_namespace, a)) for a in audiences}
    app[AUDIT] = AuditLog(settings)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/v1/snapshot", snapshot)
    app.router.add_get("/v1/stream", stream)
    app.router.add_get("/v1/cap", cap_stream)
    app.router.add_get("/v1/eido", eido_socket)
    app.router.add_get("/v1/areas", areas)
    app.router.add_get("/", dashboard)
    app.router.add_get("/dashboard", dashboard)
    if STATIC_DIR.is_dir():
        app.router.add_static("/static", STATIC_DIR)
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return app


async def _start(app: web.Application) -> None:
    await app[AUDIT].start()
    app[TASKS] = [asyncio.create_task(app[DIRECTORY].follow())] + [
        asyncio.create_task(hub.run()) for hub in app[HUBS].values()]


async def _stop(app: web.Application) -> None:
    for task in app[TASKS]:
        task.cancel()
    await asyncio.gather(*app[TASKS], return_exceptions=True)
    await app[AUDIT].stop()
    await app[REDIS].aclose()


def run() -> int:
    import logging.config

    settings = load()
    config = logging_config(settings.log_level, settings.log_format)
    if config is None:
        logging.basicConfig(level=settings.log_level.upper(),
                            format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    else:
        logging.config.dictConfig(config)
    web.run_app(create_app(settings), host=settings.gateway_host, port=settings.gateway_port,
                access_log=None, print=None)
    return 0
