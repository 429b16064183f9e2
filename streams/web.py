"""HTTP pages of the worker: Prometheus metrics and health."""

from __future__ import annotations

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams import store_memory
from streams.app import app


@app.page("/metrics")
class Metrics(View):
    async def get(self, request: Request) -> Response:
        store_memory.measure(app.tables.values())
        return self.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


@app.page("/healthz")
class Health(View):
    async def get(self, request: Request) -> Response:
        return self.json({"status": "ok"})
