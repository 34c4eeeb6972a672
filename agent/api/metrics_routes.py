"""GET /metrics (Prometheus text, behind auth) and the middleware that times every request."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from agent.api.appkeys import SERVICES_KEY
from agent.supervision.metrics import CONTENT_TYPE


def route_label(request: web.Request) -> str:
    """The route template (``/desktop/window/{window_id}/size``), never the raw path: bounded."""
    resource = request.match_info.route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: latency by route template, method and final status.

    It sits outside the error envelope, so it sees the status the client got (401, 404, 503...).
    It also keeps the set of requests in flight, which a graceful stop waits for, then cancels.
    """
    metrics = request.app[SERVICES_KEY].metrics
    task = asyncio.current_task()
    metrics.request_started(task)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:  # client gone or graceful stop: nginx's "client closed request"
        status = 499
        raise
    finally:
        metrics.request_finished(task)
        metrics.observe_request(route_label(request), request.method, status, time.perf_counter() - started)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[SERVICES_KEY].metrics.render()
    # Set as a raw header: prometheus_client's value carries version and charset parameters.
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics, name="metrics", allow_head=False)


OPENAPI_PATHS: dict[str, Any] = {
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text exposition format)",
            "description": (
                "Request latency by route template and status, actions by type and result, readiness "
                "gauges, heartbeat last success. Behind the bearer token like every route but /health."
            ),
            "tags": ["health"],
            "responses": {
                "200": {
                    "description": "Metrics in the Prometheus text format 0.0.4",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": {"$ref": "#/components/responses/Error"},
            },
        }
    },
}
