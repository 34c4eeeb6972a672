"""The middleware that times every request by route template (served by GET /metrics)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from agent.api.appkeys import SERVICES_KEY


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
