"""The operation machinery behind every REST route, POST /actions and POST /batch.

Each handler generated from the operation registry checks the operation's capabilities (before
reading the request, and again for what the request asks), validates it, runs it and renders the
declared answer. ``agent.api.routes`` adds the routes and imports this module on the first
request that needs it: an idle agent has not loaded it, nor the registry, nor pydantic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from aiohttp.client_exceptions import ClientPayloadError  # not `from aiohttp`: see agent.api.lazy_client
from pydantic import BaseModel, Field

from agent.actions import space
from agent.actions.context import seed_fields
from agent.actions.outputs import ByteBody, Output
from agent.actions.registry import REGISTRY, Operation, validate
from agent.api.appkeys import SERVICES_KEY
from agent.api.body import read_json
from agent.api.coordinate_space import declared_space
from agent.api.query import query_data
from agent.api.replies import image_json, render
from agent.api.routes import import_off_loop, only_type
from agent.api.streaming import cancel_on_disconnect
from agent.errors import AgentError, InvalidArgument, PermissionDenied, Unavailable
from agent.models.base import Request, Result
from agent.models.image import ImageResult
from agent.services import Services

MAX_BATCH_ACTIONS = 1000


_PAGE_CONTEXT = Field(
    default=None, description="Seed 002's place for result.page_context (present with include_context)"
)
_EXECUTED_TAB = Field(default=None, description="The browser tab the action ran in or read (seed 002)")


class ActionAnswer(Result):
    success: bool = True
    result: dict[str, Any] = Field(default_factory=dict)
    page_context: dict[str, Any] | None = _PAGE_CONTEXT
    executed_tab_id: str | None = _EXECUTED_TAB


class BatchRequest(Request):
    actions: list[dict[str, Any]] = Field(
        description="Tagged actions, as for POST /actions, run in order", max_length=MAX_BATCH_ACTIONS
    )
    stop_on_error: bool = Field(default=True, description="Stop at the first failed action")


class BatchStep(Result):
    index: int
    type: str
    success: bool
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    duration_ms: float
    page_context: dict[str, Any] | None = _PAGE_CONTEXT
    executed_tab_id: str | None = _EXECUTED_TAB


class BatchAnswer(Result):
    success: bool
    results: list[BatchStep]


async def execute(
    services: Services, action: Operation, request: BaseModel, *, locked: bool, body: ByteBody | None = None
) -> Output:
    """Run one checked and validated operation; input actions take the input lock unless the
    caller holds it. Counted by type and outcome (ok or the error code) for /metrics. Its
    coordinates pass through the caller's coordinate space, if the request declared one."""
    result = "INTERNAL"
    try:
        if action.uses_input and not locked:
            async with services.input_lock:
                output = await space.run(services, action, request, body)
        else:
            output = await space.run(services, action, request, body)
        result = "ok"
        return output
    except AgentError as exc:
        result = exc.code
        raise
    except asyncio.CancelledError:  # the client went away or the agent is stopping
        result = "CANCELLED"
        raise
    finally:
        services.metrics.count_action(action.type, result)


def result_json(output: Output) -> dict[str, Any]:
    """The ``result`` object of /actions and /batch: images as base64, no redundant success."""
    if isinstance(output, ImageResult):
        return image_json(output).model_dump(mode="json")
    if not isinstance(output, BaseModel):  # the registry lets only JSON and image answers be actions
        raise TypeError(f"{type(output).__name__} cannot be an action result")
    data = output.model_dump(mode="json")
    data.pop("success", None)
    return data


async def _request_data(request: web.Request, operation: Operation) -> dict[str, Any]:
    """The request's fields: path parameters, then the query (and mapped headers) or JSON body."""
    if operation.from_query:
        from_headers = {
            name: request.headers[header]
            for header, name in operation.headers.items()
            if header in request.headers
        }
        data = query_data(request.query, operation.model, from_headers)
    else:
        data = await read_json(request)
        for name, value in request.match_info.items():  # the path names them; the body may repeat them
            if name in data and data[name] != value:
                raise InvalidArgument(
                    f"{name}: the path gives {value!r}; leave it out of the body", details={"field": name}
                )
    data.update(request.match_info)
    type_field = operation.model.model_fields.get("type")
    # A tagged model (its type has a default) runs that type only; a vendor's body has a "type" of its own.
    if type_field is not None and not type_field.is_required():
        only_type(data.setdefault("type", type_field.default), type_field.default)
    return data


def rest_handler(operation: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The generated handler of one declared route: check, validate, run, render."""

    async def handle(request: web.Request) -> web.StreamResponse:
        services = request.app[SERVICES_KEY]
        try:
            operation.authorize(services.config)  # before reading anything the caller sent
            coordinate_space = declared_space(request, query_names=operation.space_query)
            data = await _request_data(request, operation)
            model = operation.prepare(services.config, data, from_query=operation.from_query)
        except AgentError as exc:
            services.metrics.count_action(operation.type, exc.code)  # refusals are outcomes too
            raise
        extra = (
            {"body": ByteBody(_chunks(request), request.content_length)} if operation.body == "bytes" else {}
        )
        with space.use(coordinate_space):
            async with _watch_client(request, operation):
                output = await execute(services, operation, model, locked=False, **extra)
                return await render(request, output)

    handle.__name__ = f"rest_{operation.type}"
    return handle


async def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The raw body as it arrives; a body cut short is the caller's 400, not a 500."""
    try:
        async for chunk in request.content.iter_any():
            yield chunk
    except (ConnectionError, ClientPayloadError, asyncio.IncompleteReadError):
        raise InvalidArgument("the upload ended before its end; nothing was written") from None


async def post_action(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES_KEY]
    coordinate_space = declared_space(request)
    payload = await read_json(request)
    await imported(_types(payload))
    try:
        action, model = REGISTRY.parse(payload, services.config)
    except AgentError as exc:
        _count_refusal(services, payload, exc)
        raise
    with space.use(coordinate_space):
        async with _watch_client(request, action):
            output = await execute(services, action, model, locked=False)
    result = result_json(output)
    answer = ActionAnswer(result=result, **seed_fields(result))
    unset = {"page_context", "executed_tab_id"} - answer.model_fields_set
    return web.Response(text=answer.model_dump_json(exclude=unset), content_type="application/json")


async def post_batch(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES_KEY]
    coordinate_space = declared_space(request)
    batch = validate(BatchRequest, await read_json(request))
    await imported(_types(batch.actions))
    parsed = []
    for index, payload in enumerate(batch.actions):
        try:
            parsed.append(REGISTRY.parse(payload, services.config))
        except AgentError as exc:
            _count_refusal(services, payload, exc)
            # Nothing runs when any step is refused: a switched-off capability keeps its status.
            error = type(exc) if isinstance(exc, PermissionDenied | Unavailable) else InvalidArgument
            raise error(f"actions[{index}]: {exc.message}", details={"index": index, **exc.details}) from None
    with space.use(coordinate_space):
        return await _run_batch(request, services, batch, parsed)


async def _run_batch(
    request: web.Request, services: Services, batch: BatchRequest, parsed: list[tuple[Operation, BaseModel]]
) -> web.StreamResponse:
    steps: list[BatchStep] = []
    # A client that goes away cancels the batch: its waits must not hold the input lock for it.
    async with cancel_on_disconnect(request), services.input_lock:
        failed = False
        finished = False
        try:
            for index, (action, model) in enumerate(parsed):
                started = time.perf_counter()
                try:
                    output = await execute(services, action, model, locked=True)
                except AgentError as exc:
                    failed = True
                    steps.append(_step(index, action, started, error=exc))
                    if batch.stop_on_error:
                        break
                else:
                    steps.append(_step(index, action, started, result=result_json(output)))
            finished = True
        finally:
            if failed or not finished:
                # A failed or cancelled batch must not leave keys or buttons held down; released
                # while the lock is still held, so the next input starts from a clean state.
                await services.desktop.release_all()
    answer = BatchAnswer(success=not failed, results=steps)
    return web.Response(text=answer.model_dump_json(exclude_none=True), content_type="application/json")


def _count_refusal(services: Services, payload: object, exc: AgentError) -> None:
    """Count a refused action under its type, if it names a declared one (no label per typo)."""
    kind = payload.get("type") if isinstance(payload, dict) else None
    if isinstance(kind, str) and REGISTRY.is_declared(kind):
        services.metrics.count_action(kind, exc.code)


def _watch_client(request: web.Request, action: Operation) -> contextlib.AbstractAsyncContextManager[None]:
    """Commands and streams die with their client (``cancel_on_disconnect``); others run on."""
    return cancel_on_disconnect(request) if action.cancel_on_disconnect else contextlib.nullcontext()


def _step(
    index: int,
    action: Operation,
    started: float,
    *,
    result: dict[str, Any] | None = None,
    error: AgentError | None = None,
) -> BatchStep:
    return BatchStep(
        index=index,
        type=action.type,
        success=error is None,
        result=result,
        **(seed_fields(result) if result is not None else {}),
        error=None
        if error is None
        else {"code": error.code, "message": error.message, "details": error.details},
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


async def imported(types: Iterable[object]) -> None:
    """Import the modules of the operations ``types`` not loaded yet on a worker thread (tens of
    milliseconds of unmarshalling and model building the event loop does not wait through)."""
    missing = [kind for kind in types if isinstance(kind, str) and not REGISTRY.is_loaded(kind)]
    if missing:

        def load() -> None:
            for kind in missing:
                REGISTRY.load(kind)

        await import_off_loop(load)


def _types(actions: object) -> list[object]:
    """The ``type`` of each tagged action in a list (anything else is left to validation)."""
    items = actions if isinstance(actions, list) else [actions]
    return [item.get("type") for item in items if isinstance(item, dict)]


async def loaded_handler(type: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler of operation ``type``'s route, its module imported first (``agent.api.routes``
    calls this on the route's first request)."""
    await imported([type])
    operation = REGISTRY.find(type)
    if operation is None:  # a stale manifest; tests/unit/test_client_generated.py catches it
        raise RuntimeError(f"the route manifest names {type!r}, which no module declares: run `make sdk`")
    return rest_handler(operation)
