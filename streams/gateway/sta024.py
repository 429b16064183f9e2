"""The EIDO WebSocket: the NENA-STA-024 subscribe / event / acknowledge exchange.

Messages are JSON objects with one key naming the message:
  client  {"subscribe": {"requestId", "requestType": "EIDO", "requestSubType": "new"
                         | "single", "incidentId"?, "maxRate"?, "lastTransactionPosition"?}}
  server  {"subscribeResponse": {"requestId", "subscriptionId", "statusCode", "statusText",
                                 "maxRate"?}}
  server  {"event": {"subscriptionId", "transactionId", "position", "notification": [EIDO]}}
  client  {"eventResponse": {"subscriptionId", "transactionId", "statusCode": 200}}
  client  {"unsubscribe": {"requestId", "subscriptionId"}} -> {"unsubscribeResponse": ...}
maxRate is STA-024's minimum seconds between notifications of one incident; the gateway
grants the larger of the request and the partner's registered interval. `position` (our
extension) is the serving stream's id: a subscriber that reconnects passes it back as
lastTransactionPosition and receives what it missed. Only incidents travel as EIDO.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from agents.publish.eido import eido_notification
from streams import metrics
from streams.gateway.hub import Entry
from streams.gateway.server import (
    AUDIT, HUBS, SETTINGS, STREAM_ID, Delivery, authenticate,
)

MAX_UNACKNOWLEDGED = 1000


def _status(code: int, text: str) -> dict[str, Any]:
    return {"statusCode": code, "statusText": text}


async def eido_socket(request: web.Request) -> web.WebSocketResponse:
    partner = await authenticate(request, "/v1/eido")
    audience, audit = partner["audience"], request.app[AUDIT]
    ws = web.WebSocketResponse(heartbeat=request.app[SETTINGS].gateway_heartbeat_s)
    await ws.prepare(request)
    metrics.GATEWAY_CONNECTIONS.labels(audience, "websocket").inc()
    await audit.record("connect", "/v1/eido", "ok", partner=partner, client=request.remote)
    subscriptions: dict[str, asyncio.Task[None]] = {}
    unacknowledged: dict[str, str] = {}  # transaction id -> subscription id
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                doc = orjson.loads(message.data)
                (name, body), = doc.items()
            except (orjson.JSONDecodeError, ValueError, AttributeError):
                await ws.send_bytes(orjson.dumps({"error": _status(400, "not one JSON message")}))
                continue
            if name == "subscribe":
                await _subscribe(request, ws, partner, body, subscriptions, unacknowledged)
            elif name == "unsubscribe":
                task = subscriptions.pop(str(body.get("subscriptionId")), None)
                if task:
                    task.cancel()
                    await audit.record("unsubscribe", f"subscription:{body.get('subscriptionId')}",
                                       "ok", partner=partner, client=request.remote)
                await ws.send_bytes(orjson.dumps({"unsubscribeResponse": {
                    "requestId": body.get("requestId"),
                    "subscriptionId": body.get("subscriptionId"),
                    **(_status(200, "OK") if task else _status(404, "no such subscription"))}}))
            elif name == "eventResponse":
                unacknowledged.pop(str(body.get("transactionId")), None)
            else:
                await ws.send_bytes(orjson.dumps({"error": _status(400, f"unknown {name!r}")}))
    finally:
        for task in subscriptions.values():
            task.cancel()
        await asyncio.gather(*subscriptions.values(), return_exceptions=True)
        metrics.GATEWAY_CONNECTIONS.labels(audience, "websocket").dec()
        await audit.record("disconnect", "/v1/eido", "ok", partner=partner,
                           client=request.remote)
    return ws


async def _subscribe(request: web.Request, ws: web.WebSocketResponse, partner: dict[str, Any],
                     body: dict[str, Any], subscriptions: dict[str, asyncio.Task[None]],
                     unacknowledged: dict[str, str]) -> None:
    audit = request.app[AUDIT]
    request_id = body.get("requestId")
    position = body.get("lastTransactionPosition")
    problem = None
    if body.get("requestType", "EIDO") != "EIDO":
        problem = _status(400, "only requestType EIDO is offered")
    elif body.get("requestSubType", "new") not in ("new", "single"):
        problem = _status(400, "requestSubType must be new or single")
    elif body.get("requestSubType") == "single" and not body.get("incidentId"):
        problem = _status(400, "incidentId is required for a single-incident subscription")
    elif position is not None and not STREAM_ID.match(str(position)):
        problem = _status(400, "bad lastTransactionPosition")
    if problem:
        await audit.record("subscribe", "/v1/eido", "denied", partner=partner,
                           client=request.remote, detail=problem["statusText"])
        await ws.send_bytes(orjson.dumps({"subscribeResponse": {"requestId": request_id,
                                                                 **problem}}))
        return
    subscription_id = str(uuid.uuid4())
    requested_rate = float(body.get("maxRate") or 0)
    single = body.get("incidentId") if body.get("requestSubType") == "single" else None

    async def send(entry: Entry) -> None:
        entry_id, payload, _place, _body = entry
        if single and payload["subject_id"] != single:
            return
        while len(unacknowledged) >= MAX_UNACKNOWLEDGED:
            await asyncio.sleep(0.05)  # flow control: the subscriber must acknowledge
        message = eido_notification(payload, subscription_id)
        message["event"]["position"] = entry_id
        unacknowledged[message["event"]["transactionId"]] = subscription_id
        await ws.send_bytes(orjson.dumps(message))

    async def idle() -> None:
        return None

    delivery = Delivery(request.app[HUBS][partner["audience"]], partner, "websocket", send,
                        min_interval_s=requested_rate, incident_only=True)
    granted = delivery.coalescer.min_interval_s
    delivery.start()  # before the answer: the subscriber may act on it at once
    await ws.send_bytes(orjson.dumps({"subscribeResponse": {
        "requestId": request_id, "subscriptionId": subscription_id, **_status(200, "OK"),
        **({"maxRate": granted} if granted else {})}}))
    await audit.record("subscribe", f"subscription:{subscription_id}", "ok", partner=partner,
                       client=request.remote, detail=f"single {single}" if single else "new")
    subscriptions[subscription_id] = asyncio.create_task(
        delivery.run(position, idle, idle, request.app[SETTINGS].gateway_heartbeat_s))
