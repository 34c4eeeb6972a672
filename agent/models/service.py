"""Models of the agent's own operations: liveness, readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.models.base import Result


class NoParameters(BaseModel):
    """A route that takes nothing (probes, scrapers): unknown query parameters are ignored, as on
    every GET route (``agent.actions.leniency``); the probes are answered by ``agent.actions.probes``."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthRequest(NoParameters):
    type: Literal["health"] = "health"


class ReadyRequest(NoParameters):
    type: Literal["ready"] = "ready"


class MetricsRequest(NoParameters):
    type: Literal["metrics"] = "metrics"


class OpenAPIRequest(NoParameters):
    type: Literal["openapi"] = "openapi"


class Health(Result):
    status: Literal["ok"] = "ok"
    version: str


class ReadinessCheck(BaseModel):
    ok: bool
    required: bool = Field(description="false: reported, but does not make the agent unready")
    detail: str = Field(description="what was seen, or why the check failed")


class ReadinessScreen(BaseModel):
    width: int
    height: int


class ReadinessReport(Result):
    ready: bool = Field(description="every required check passes")
    status: Literal["starting", "ready", "degraded", "stopping"]
    checks: dict[str, ReadinessCheck] = Field(
        description="by name: display, capture, accessibility (when enabled), not_stopping"
    )
    screen: ReadinessScreen | None
