"""GET /health (liveness, no auth) and GET /ready (can this desktop be driven now?).

/ready renders ``agent.supervision.readiness``: the same cached state the heartbeat and systemd's STATUS=
report, so the three never disagree. A fresh state is at most ``Readiness.max_age`` old.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent import __version__
from agent.api.appkeys import SERVICES_KEY
from agent.supervision.readiness import ReadinessState


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


def readiness_json(state: ReadinessState) -> dict[str, Any]:
    screen = None if state.screen is None else {"width": state.screen.width, "height": state.screen.height}
    return {
        "ready": state.ready,
        "status": state.status.value,
        "checks": {c.name: {"ok": c.ok, "required": c.required, "detail": c.detail} for c in state.checks},
        "screen": screen,
    }


async def ready(request: web.Request) -> web.Response:
    state = await request.app[SERVICES_KEY].readiness.current()
    if state.ready:
        return web.json_response(readiness_json(state))
    return web.json_response(readiness_json(state), status=503, headers={"Retry-After": "1"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health, name="health", allow_head=False)
    app.router.add_get("/ready", ready, name="ready", allow_head=False)


_CHECK = {
    "type": "object",
    "required": ["ok", "required", "detail"],
    "properties": {
        "ok": {"type": "boolean"},
        "required": {
            "type": "boolean",
            "description": "false: reported, but does not make the agent unready",
        },
        "detail": {"type": "string", "description": "what was seen, or why the check failed"},
    },
}
_READINESS = {
    "type": "object",
    "required": ["ready", "status", "checks", "screen"],
    "properties": {
        "ready": {"type": "boolean", "description": "every required check passes"},
        "status": {"enum": ["starting", "ready", "degraded", "stopping"]},
        "checks": {
            "type": "object",
            "description": "by name: display, capture, accessibility (when enabled), not_stopping",
            "additionalProperties": _CHECK,
        },
        "screen": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["width", "height"],
                    "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
                },
                {"type": "null"},
            ]
        },
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/health": {
        "get": {
            "summary": "Liveness (no auth)",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": {
                    "description": "The agent is alive",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
                                "required": ["status"],
                            }
                        }
                    },
                }
            },
        }
    },
    "/ready": {
        "get": {
            "summary": "Readiness: 200 when every required check passes, else 503",
            "description": (
                "Cheap cached checks: the X display answers, the accessibility bus answers (when "
                "accessibility is enabled), the agent is not shutting down. The heartbeat and "
                "systemd's STATUS= report the same state."
            ),
            "tags": ["health"],
            "responses": {
                "200": {"description": "Ready", "content": {"application/json": {"schema": _READINESS}}},
                "503": {
                    "description": "Not ready (Retry-After set); the body says which check fails",
                    "content": {"application/json": {"schema": _READINESS}},
                },
                "401": {"$ref": "#/components/responses/Error"},
            },
        }
    },
}
