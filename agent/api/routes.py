"""Every REST route, ``POST /actions`` and ``POST /batch``, added from the generated manifest.

What an idle agent runs is only this: the routes, each a small stub. The operation machinery
(the registry, pydantic and the request and result models, ``agent.api.action_routes``) is
imported on the first request that needs it, on a worker thread, and an operation's own module
(its models and handler) on the first request for that operation. The probes (``/health``,
``/ready``, ``/metrics``), which monitors call all day, are answered without any of it
(``agent.actions.probes``): an agent nobody drives stays at its idle footprint (issue 19).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TypeVar

from aiohttp import web

from agent.actions import manifest
from agent.actions.outputs import RawBody
from agent.actions.probes import PROBES
from agent.api.appkeys import SERVICES_KEY
from agent.api.coordinate_space import declared_space
from agent.errors import AgentError, InvalidArgument

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MACHINERY = "agent.api.action_routes"


T = TypeVar("T")
_imported: dict[str, ModuleType] = {}  # the machinery, once its import has finished


async def import_off_loop(load: Callable[[], T]) -> T:
    """Run ``load`` (imports) on a worker thread. What it made lives as long as the agent: out of
    the collector's sight, as what start-up made is (``gc.freeze`` in ``agent.cli.serve``), so
    full collections do not walk the models and handlers again and again."""
    loaded = await asyncio.to_thread(load)
    gc.freeze()
    return loaded


async def machinery() -> ModuleType:
    """``agent.api.action_routes``, imported on a worker thread the first time (the registry and
    pydantic: tens of milliseconds the event loop does not wait through). Not read from
    ``sys.modules``, which holds a module from the start of its import: requests that come
    meanwhile wait on the import lock in their own threads for the whole module."""
    module = _imported.get(MACHINERY)
    if module is None:
        module = _imported[MACHINERY] = await import_off_loop(lambda: importlib.import_module(MACHINERY))
    return module


def only_type(given: object, expected: str) -> None:
    """A route runs its own operation: a ``type`` naming another is the caller's mistake."""
    if given != expected:
        raise InvalidArgument(f"type: this route runs {expected!r}; for other types use POST /actions")


def raw_response(output: RawBody) -> web.Response:
    # A raw header: a content type with parameters (Prometheus's version) is sent as is.
    return web.Response(
        body=output.data,
        status=output.status,
        headers={"Content-Type": output.content_type, **(output.headers or {})},
    )


def probe_handler(type: str) -> RouteHandler:
    """The route of a probe: its answer straight from ``agent.actions.probes``. Like every GET
    route it ignores query parameters it does not know; it is counted under its type."""
    probe = PROBES[type]

    async def handle(request: web.Request) -> web.StreamResponse:
        services = request.app[SERVICES_KEY]
        try:
            declared_space(request)  # checked as on every route (a malformed one is a 400)
            only_type(request.query.get("type", type), type)
            output = await probe(services)
        except AgentError as exc:
            services.metrics.count_action(type, exc.code)
            raise
        services.metrics.count_action(type, "ok")
        return raw_response(output)

    handle.__name__ = f"probe_{type}"
    return handle


def lazy_rest_handler(type: str) -> RouteHandler:
    """The route of operation ``type``: the machinery and the operation's module are imported
    on its first request (on a worker thread), not at start."""
    handler: RouteHandler | None = None

    async def handle(request: web.Request) -> web.StreamResponse:
        nonlocal handler
        if handler is None:
            handler = await (await machinery()).loaded_handler(type)
        return await handler(request)

    handle.__name__ = f"rest_{type}"
    return handle


async def post_action(request: web.Request) -> web.StreamResponse:
    return await (await machinery()).post_action(request)  # type: ignore[no-any-return]


async def post_batch(request: web.Request) -> web.StreamResponse:
    return await (await machinery()).post_batch(request)  # type: ignore[no-any-return]


def add_routes(app: web.Application) -> None:
    """Every declared route (GET ones also as HEAD), then /actions and /batch.

    HEAD runs the GET operation itself, so its status and headers (Content-Length, the image
    sizes) are exactly GET's; aiohttp sends no body. It therefore has GET's effects and no more: a
    HEAD on a screenshot captures one; an event stream is closed before its first event.
    """
    for type, method, path in manifest.ROUTES:
        resource = app.router.add_resource(path, name=type)
        handler = probe_handler(type) if type in PROBES else lazy_rest_handler(type)
        resource.add_route(method, handler)
        if method == "GET":
            resource.add_route("HEAD", handler)
    app.router.add_post("/actions", post_action, name="actions")
    app.router.add_post("/batch", post_batch, name="batch")
