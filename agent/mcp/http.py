"""``POST /mcp``: the MCP tools served by the daemon over streamable HTTP, behind its middleware.

The SDK's ``StreamableHTTPSessionManager`` runs stateless with JSON answers: every POST carries
one JSON-RPC message and gets its answer, so the daemon keeps no MCP session state (nothing to
expire or lose on restart) and the tools have nothing to push. Its own DNS-rebinding checks are
off because ``agent.api.guard`` already checks Host and Origin for every route, and bearer auth
is the daemon's. Tools run in-process exactly as ``/actions`` runs them (capabilities, validation
with the leniency policy, the input lock, metrics).

The mcp SDK (~0.4 s and ~26 MiB to import) and the operation machinery are loaded on the first ``/mcp`` request (on a worker thread), so an agent nobody reaches over MCP
starts and idles as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.api.appkeys import SERVICES_KEY
from agent.errors import AgentError
from agent.mcp.asgi import serve_asgi
from agent.mcp.document import ROUTE

if TYPE_CHECKING:
    from agent.actions.registry import Operation
    from agent.services import Services


def in_process(services: Services) -> Any:
    """Run a tool as POST /actions would run its action; its error envelope as ToolFailed."""
    from agent.actions.registry import REGISTRY
    from agent.api.action_routes import execute, result_json
    from agent.mcp.tools import ToolFailed

    async def invoke(type: str, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            operation, request = REGISTRY.parse({**arguments, "type": type}, services.config)
            output = await execute(services, operation, request, locked=False)
        except AgentError as exc:
            raise ToolFailed(exc.code, exc.message) from None
        return result_json(output)

    return invoke


def enabled_tools(services: Services) -> list[Operation]:
    """The tools whose capabilities this agent has switched on."""
    from agent.mcp.tools import tool_operations

    enabled = []
    for operation in tool_operations():
        try:
            operation.authorize(services.config)
        except AgentError:
            continue
        enabled.append(operation)
    return enabled


class McpEndpoint:
    """The session manager, started on first use; its task group runs in a task of its own
    (anyio scopes must be left in the task that entered them)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._manager: Any = None
        self._task: asyncio.Task[None] | None = None

    async def manager(self, services: Services) -> Any:
        async with self._lock:
            if self._manager is None:
                await self._start(services)
        return self._manager

    async def _start(self, services: Services) -> None:
        def build() -> tuple[Any, Any]:
            """The MCP SDK and every operation module imported, the server built: on a worker
            thread (a few hundred milliseconds the event loop does not wait through)."""
            from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

            from agent.mcp.tools import build_server

            return StreamableHTTPSessionManager, build_server(in_process(services), enabled_tools(services))

        manager_class, server = await asyncio.to_thread(build)
        manager = manager_class(app=server, json_response=True, stateless=True)  # (anyio: on the loop)
        started = asyncio.Event()

        async def run() -> None:
            async with manager.run():
                started.set()
                await self._stop.wait()

        self._task = asyncio.create_task(run(), name="mcp-session-manager")
        await started.wait()
        self._manager = manager

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


MCP_KEY = web.AppKey("mcp", McpEndpoint)


async def handle(request: web.Request) -> web.StreamResponse:
    manager = await request.app[MCP_KEY].manager(request.app[SERVICES_KEY])
    return await serve_asgi(manager.handle_request, request)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[MCP_KEY].close()


def add_routes(app: web.Application) -> None:
    """``POST /mcp``: stateless, so no GET stream and no session to DELETE (both 405)."""
    app[MCP_KEY] = McpEndpoint()
    app.router.add_post(ROUTE, handle, name="mcp")
    app.cleanup_ctx.append(_lifecycle)
