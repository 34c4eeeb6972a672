"""REST routes, POST /actions and POST /batch, all generated from the action registry."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from agent.actions.registry import REGISTRY, Action, ActionOutput, validate
from agent.api.appkeys import SERVICES_KEY
from agent.api.body import read_json
from agent.api.streaming import cancel_on_disconnect
from agent.errors import AgentError, InvalidArgument
from agent.models.base import ImageJSON, ImageResult, Request, Result
from agent.services import Services

MAX_BATCH_ACTIONS = 1000


class ActionAnswer(Result):
    success: bool = True
    result: dict[str, Any] = Field(default_factory=dict)


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


class BatchAnswer(Result):
    success: bool
    results: list[BatchStep]


def query_dict(request: web.Request, model: type[BaseModel]) -> dict[str, Any]:
    """Query parameters as a dict; repeated keys (or list fields) become lists."""
    data: dict[str, Any] = {}
    for key in request.query:
        if key in data:
            continue
        values = request.query.getall(key)
        field = model.model_fields.get(key)
        is_list = field is not None and "list" in str(field.annotation)
        if is_list:
            data[key] = [part for value in values for part in value.split(",") if part]
        else:
            data[key] = values[0] if len(values) == 1 else values
    return data


async def execute(services: Services, action: Action, request: BaseModel, *, locked: bool) -> ActionOutput:
    """Run one validated action; input actions take the input lock unless the caller holds it."""
    result = "INTERNAL"
    try:
        if action.uses_input and not locked:
            async with services.input_lock:
                output = await action.handler(services, request)
        else:
            output = await action.handler(services, request)
        result = "ok"
        return output
    except AgentError as exc:
        result = exc.code
        raise
    except asyncio.CancelledError:  # the client went away or the agent is stopping
        result = "CANCELLED"
        raise
    finally:  # counted by type and outcome (ok or the error code) for /metrics
        services.metrics.count_action(action.type, result)


def result_json(output: ActionOutput) -> dict[str, Any]:
    """The ``result`` object of /actions and /batch: images as base64, no redundant success."""
    if isinstance(output, ImageResult):
        return image_json(output).model_dump(mode="json")
    data = output.model_dump(mode="json")
    data.pop("success", None)
    return data


def image_json(image: ImageResult) -> ImageJSON:
    return ImageJSON(
        image=base64.b64encode(image.data).decode("ascii"),
        format=image.format,  # type: ignore[arg-type]
        width=image.width,
        height=image.height,
    )


def rest_response(output: ActionOutput) -> web.StreamResponse:
    if isinstance(output, ImageResult):
        headers = {
            "X-Screen-Width": str(output.screen_width),
            "X-Screen-Height": str(output.screen_height),
            "X-Image-Width": str(output.width),
            "X-Image-Height": str(output.height),
        }
        if output.as_json:
            return web.json_response(image_json(output).model_dump(mode="json"), headers=headers)
        return web.Response(body=output.data, content_type=output.content_type, headers=headers)
    # Serialised by pydantic-core in one pass (an 8k-node accessibility tree: ~20x faster than
    # model_dump + json.dumps).
    return web.Response(text=output.model_dump_json(), content_type="application/json")


def rest_handler(action: Action) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        from_query = action.method == "GET"
        data = query_dict(request, action.model) if from_query else await read_json(request)
        data.update(request.match_info)
        if data.setdefault("type", action.type) != action.type:
            raise InvalidArgument(f"type: this route runs {action.type!r}; for other types use POST /actions")
        model: BaseModel = validate(action.model, data, from_query=from_query)
        async with _watch_client(request, action):
            output = await execute(request.app[SERVICES_KEY], action, model, locked=False)
        return rest_response(output)

    handle.__name__ = f"rest_{action.type}"
    return handle


async def post_action(request: web.Request) -> web.StreamResponse:
    action, model = REGISTRY.parse(await read_json(request))
    async with _watch_client(request, action):
        output = await execute(request.app[SERVICES_KEY], action, model, locked=False)
    return web.json_response(ActionAnswer(result=result_json(output)).model_dump(mode="json"))


async def post_batch(request: web.Request) -> web.StreamResponse:
    batch = validate(BatchRequest, await read_json(request))
    parsed = []
    for index, payload in enumerate(batch.actions):
        try:
            parsed.append(REGISTRY.parse(payload))
        except AgentError as exc:
            raise InvalidArgument(
                f"actions[{index}]: {exc.message}", details={"index": index, **exc.details}
            ) from None
    services = request.app[SERVICES_KEY]
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
    return web.json_response(answer.model_dump(mode="json", exclude_none=True))


def _watch_client(request: web.Request, action: Action) -> contextlib.AbstractAsyncContextManager[None]:
    """Commands die with their client (``Action.cancel_on_disconnect``); other actions run on."""
    return cancel_on_disconnect(request) if action.cancel_on_disconnect else contextlib.nullcontext()


def _step(
    index: int,
    action: Action,
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
        error=None
        if error is None
        else {"code": error.code, "message": error.message, "details": error.details},
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
    )


def add_routes(app: web.Application) -> None:
    for action in REGISTRY:
        if action.route is None:
            continue
        handler = rest_handler(action)
        if action.method == "GET":
            app.router.add_get(action.route, handler, name=action.type, allow_head=False)
        else:
            app.router.add_post(action.route, handler, name=action.type)
    app.router.add_post("/actions", post_action, name="actions")
    app.router.add_post("/batch", post_batch, name="batch")
