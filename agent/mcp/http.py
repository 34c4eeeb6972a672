"""``/mcp``: the MCP tools served by the daemon over streamable HTTP, behind its middleware.

The SDK's ``StreamableHTTPSessionManager`` runs stateless with JSON answers: every POST carries
one JSON-RPC message and gets its answer, so the daemon keeps no MCP session state (nothing to
expire or lose on restart) and the tools have nothing to push. Its own DNS-rebinding checks are
off because ``agent.api.guard`` already checks Host and Origin for every route, and bearer auth
is the daemon's. Tools run in-process exactly as ``/actions`` runs them (capabilities, validation
with the leniency policy, the input lock, metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from agent.actions.registry import REGISTRY
from agent.api.action_routes import execute, result_json
from agent.api.appkeys import SERVICES_KEY
from agent.errors import AgentError
from agent.mcp.asgi import serve_asgi
from agent.mcp.document import ROUTE
from agent.mcp.tools import ToolFailed, build_server, tool_operations
from agent.services import Services

MANAGER_KEY = web.AppKey("mcp_manager", StreamableHTTPSessionManager)


def in_process(services: Services) -> Any:
    """Run a tool as POST /actions would run its action; its error envelope as ToolFailed."""

    async def invoke(type: str, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            operation, request = REGISTRY.parse({**arguments, "type": type}, services.config)
            output = await execute(services, operation, request, locked=False)
        except AgentError as exc:
            raise ToolFailed(exc.code, exc.message) from None
        return result_json(output)

    return invoke


def _enabled(services: Services) -> list[Any]:
    """The tools whose capabilities this agent has switched on."""
    enabled = []
    for operation in tool_operations():
        try:
            operation.authorize(services.config)
        except AgentError:
            continue
        enabled.append(operation)
    return enabled


async def handle(request: web.Request) -> web.StreamResponse:
    manager = request.app[MANAGER_KEY]
    return await serve_asgi(manager.handle_request, request)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """The session manager's task group runs in a task of its own (anyio scopes must be left in
    the task that entered them; aiohttp's startup and cleanup may run in different ones)."""
    services = app[SERVICES_KEY]
    manager = StreamableHTTPSessionManager(
        app=build_server(in_process(services), _enabled(services)), json_response=True, stateless=True
    )
    app[MANAGER_KEY] = manager
    started = asyncio.Event()
    stop = asyncio.Event()

    async def run() -> None:
        async with manager.run():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run(), name="mcp-session-manager")
    await started.wait()
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def add_routes(app: web.Application) -> None:
    """``POST /mcp``: stateless, so no GET stream and no session to DELETE (both 405)."""
    app.router.add_post(ROUTE, handle, name="mcp")
    app.cleanup_ctx.append(_lifecycle)
