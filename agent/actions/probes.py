"""The answers of the probes: ``/health``, ``/ready`` and ``/metrics``, as bytes.

Load balancers, the control plane and Prometheus call these all day on an agent that is
otherwise idle, so they are answered without the operation machinery: no pydantic, no registry,
no operation module (an idle agent then carries none of them: ~9 MiB, issue 19). The JSON is
written here in the shape of the declared result models (``agent.models.service``: ``Health``,
``ReadinessReport``), which document it; tests/unit/test_probes.py checks each answer
against its model. ``agent.actions.service`` declares the operations with these handlers, and
``agent.api.routes`` serves their routes straight from here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.actions.outputs import RawBody

if TYPE_CHECKING:
    from agent.services import Services
    from agent.supervision.readiness import ReadinessState

JSON = "application/json"


def _json(value: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> RawBody:
    # Compact and UTF-8, as pydantic-core writes a model.
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return RawBody(data, JSON, headers, status)


async def health(services: Services) -> RawBody:
    return _json({"status": "ok", "version": __version__})


def readiness_report(state: ReadinessState) -> dict[str, Any]:
    """``ReadinessReport``'s fields for ``state``."""
    return {
        "ready": state.ready,
        "status": state.status.value,
        "checks": state.check_fields(),
        "screen": state.screen_fields(),
    }


async def ready(services: Services) -> RawBody:
    """200 when every required check passes, else 503 with Retry-After (the same body)."""
    state = await services.readiness.current()
    if state.ready:
        return _json(readiness_report(state))
    return _json(readiness_report(state), 503, {"Retry-After": "1"})


async def metrics(services: Services) -> RawBody:
    from agent.supervision.metrics import CONTENT_TYPE

    # Sent as is: prometheus_client's content type carries version and charset parameters.
    return RawBody(services.metrics.render(), CONTENT_TYPE)


PROBES: dict[str, Callable[[Services], Awaitable[RawBody]]] = {
    "health": health,
    "ready": ready,
    "metrics": metrics,
}
