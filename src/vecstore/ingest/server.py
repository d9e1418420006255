"""The worker's small HTTP endpoint: /metrics, /healthz, /readyz and /v1/status.

It only reads the worker's state; it never changes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from vecstore.ingest.worker import IngestWorker

WORKER = web.AppKey("worker", IngestWorker)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    worker = request.app[WORKER]
    worker.refresh_gauges()
    return web.Response(body=worker.metrics.render(), content_type="text/plain")


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process serves HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 once the worker consumes (topics checked, schemas loaded)."""
    ready = request.app[WORKER].ready
    return web.json_response({"status": "ok" if ready else "not_ready"}, status=200 if ready else 503)


async def status(request: web.Request) -> web.Response:
    """GET /v1/status: partitions with safe offset, highwater and lag; record counts."""
    return web.json_response({"status": "ok", **request.app[WORKER].status()})


def create_app(worker: IngestWorker) -> web.Application:
    """The aiohttp application of one worker."""
    app = web.Application()
    app[WORKER] = worker
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/status", status)
    return app


@asynccontextmanager
async def serving(worker: IngestWorker, host: str, port: int) -> AsyncIterator[web.AppRunner]:
    """Serve the endpoint while the block runs."""
    runner = web.AppRunner(create_app(worker), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield runner
    finally:
        await runner.cleanup()
