"""The agent's own operations: liveness, readiness, metrics and the OpenAPI document.

/ready renders ``agent.supervision.readiness``: the same cached state the heartbeat and
systemd's STATUS= report, so the three never disagree. All four are REST only.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache

from agent.actions import probes
from agent.actions.outputs import RawBody
from agent.actions.registry import REGISTRY
from agent.models.service import (
    Health,
    HealthRequest,
    MetricsRequest,
    OpenAPIRequest,
    ReadinessReport,
    ReadyRequest,
)
from agent.services import Services


# The probes' answers are written without the schema machinery (agent.actions.probes); their
# routes are served from there (agent.api.routes); these run them from anywhere else.
async def health(services: Services, req: HealthRequest) -> RawBody:
    return await probes.health(services)


async def ready(services: Services, req: ReadyRequest) -> RawBody:
    return await probes.ready(services)


async def metrics(services: Services, req: MetricsRequest) -> RawBody:
    return await probes.metrics(services)


@cache
def _document_bytes() -> bytes:
    from agent.api.openapi import build_document  # the document is built from this registry

    return json.dumps(build_document(), indent=1).encode()


async def openapi(services: Services, req: OpenAPIRequest) -> RawBody:
    # Built once, from every operation module: on a worker thread, not on the event loop.
    return RawBody(await asyncio.to_thread(_document_bytes), "application/json")


_COMMON = {"tag": "health", "method": "GET", "actions": False}
REGISTRY.add(
    "health",
    HealthRequest,
    health,
    summary="Liveness (no auth)",
    route="/health",
    result=Health,
    ok="The agent is alive",
    errors=(),
    public=True,
    **_COMMON,
)
REGISTRY.add(
    "ready",
    ReadyRequest,
    ready,
    summary="Readiness: 200 when every required check passes, else 503",
    description=(
        "Cheap cached checks: the X display answers, the accessibility bus answers (when "
        "accessibility is enabled), the agent is not shutting down. The heartbeat and "
        "systemd's STATUS= report the same state."
    ),
    route="/ready",
    result=ReadinessReport,
    ok="Ready",
    replies={503: "Not ready (Retry-After set); the body says which check fails"},
    errors=(401,),
    **_COMMON,
)
REGISTRY.add(
    "metrics",
    MetricsRequest,
    metrics,
    summary="Prometheus metrics (text exposition format)",
    description=(
        "Request latency by route template and status, operations by type and result, readiness "
        "gauges, heartbeat last success. Behind the bearer token like every route but /health."
    ),
    route="/metrics",
    media="text",
    ok="Metrics in the Prometheus text format 0.0.4",
    errors=(401,),
    **_COMMON,
)
REGISTRY.add(
    "openapi",
    OpenAPIRequest,
    openapi,
    summary="This document",
    route="/openapi.json",
    media="document",
    ok="OpenAPI 3.1 document",
    errors=(401,),
    **_COMMON,
)
