"""The SDK can never drift from the server: its generated files are what the generator writes
from the registry now, and every route, method and request field of the served OpenAPI document
has its SDK method and parameter."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent.client import Agent, AsyncAgent
from agent.client import errors as sdk_errors
from agent.client._operations import _SPECS, AsyncOperations, Operations
from agent.codegen import sdk as generator
from agent.errors import AgentError as ServerError
from tests.unit.conftest import Api

HAND_WRITTEN = {("POST", "/actions"): "action", ("POST", "/batch"): "batch"}
NOT_SDK = {
    ("POST", "/mcp"),  # MCP hosts use MCP clients; the SDK calls the actions themselves
    ("GET", "/screencast"),  # an endless stream of JPEG frames (MJPEG or WebSocket): no call shape
    ("GET", "/ws"),  # a WebSocket (docs/live.md)
}
ALIASES = {"Range": "range", "Last-Event-ID": "last_event_id"}  # header parameters -> their field
# The coordinate space is the client's (Agent(coordinate_space="1024x768")), not a method's.
CLIENT_LEVEL = frozenset({"X-Coordinate-Space", "display_width_px", "display_height_px"})
# Every other served field, the per-request ones (tab_id, include_context, request_id) too, must
# be a parameter; only the action's own type tag (the method's name) is not.
IGNORED = CLIENT_LEVEL
# OpenAI's action `type` (the model's own data) is F2's SDK fix (branch fix-compat); drop this
# entry when that merges.
KNOWN_GAPS = {("POST", "/compat/openai/computer", "type")}


def test_generated_files_are_current() -> None:
    for path, text in generator.generated().items():
        assert path.read_text() == text, f"{path.name} is stale: run `python -m agent.codegen.sdk`"


def _schema_fields(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The property names of a (referenced) request schema, through allOf/anyOf."""
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []) + schema.get("anyOf", []):
        names |= _schema_fields(document, part)
    return names


async def test_every_served_route_and_field_is_in_the_sdk(api: Api) -> None:
    document = await (await api.get("/openapi.json")).json()
    routes = {(spec.method, spec.route): name for name, spec in _SPECS.items() if spec.route}
    missing = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if method.upper() not in ("GET", "POST", "PUT", "DELETE"):
                continue
            key = (method.upper(), path)
            if key in NOT_SDK:
                continue
            if key in HAND_WRITTEN:
                assert callable(getattr(Agent, HAND_WRITTEN[key]))
                continue
            name = routes.get(key)
            if name is None:
                missing.append(f"{method.upper()} {path}: no SDK method")
                continue
            fields = {ALIASES.get(p["name"], p["name"]) for p in operation.get("parameters", [])}
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "oneOf" not in body["schema"]:
                fields |= _schema_fields(document, body["schema"]) - _type_tag(document, body["schema"])
            for client in (Operations, AsyncOperations):
                parameters = set(inspect.signature(getattr(client, name)).parameters)
                if "action" in parameters:  # a tagged union (peers' endpoints): the whole action
                    continue
                for field in fields - IGNORED - parameters:
                    if (method.upper(), path, field) in KNOWN_GAPS:
                        continue
                    if not (_another_name_of(document, field) or _other_names(document, field) & parameters):
                        missing.append(f"{method.upper()} {path}: {client.__name__}.{name} has no {field!r}")
    assert not missing, "\n".join(missing)


def _type_tag(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """{"type"} when the body's ``type`` is the action's tag (one constant value), else nothing:
    a ``type`` that is the caller's own data must be a parameter like any other field."""
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    tag = schema.get("properties", {}).get("type", {})
    return {"type"} if "const" in tag or len(tag.get("enum", [])) == 1 else set()


def _another_name_of(document: dict[str, Any], field: str) -> bool:
    """Whether ``field`` is documented as another name of a field (the SDK sends the first)."""
    for schema in document["components"]["schemas"].values():
        described = schema.get("properties", {}).get(field, {}).get("description", "")
        if described.startswith("Another name of"):
            return True
    return False


def _other_names(document: dict[str, Any], field: str) -> set[str]:
    """The names documented as another name of ``field`` (the SDK may send one of them)."""
    return {
        name
        for schema in document["components"]["schemas"].values()
        for name, spec in schema.get("properties", {}).items()
        if spec.get("description") == f"Another name of `{field}`"
    }


def test_every_action_type_has_a_method() -> None:
    from agent.actions.registry import load_all

    for operation in load_all():
        if operation.media in generator.NOT_CALLS:  # a WebSocket, endless frames: no call shape
            continue
        assert callable(getattr(Agent, operation.type)) and callable(getattr(AsyncAgent, operation.type))


def test_every_server_error_code_has_its_exception() -> None:
    def concrete(cls: type[ServerError]) -> list[type[ServerError]]:
        found = [] if cls.abstract else [cls]
        for sub in cls.__subclasses__():
            found += concrete(sub)
        return found

    for server_class in concrete(ServerError):
        client_class = sdk_errors.error_class(server_class.code, server_class.status)
        assert client_class.status_code == server_class.status, server_class
        assert server_class.code in (client_class.error_code, "INTERNAL")
    assert sdk_errors.error_class("SOMETHING_NEW", 404) is sdk_errors.NotFound


@pytest.fixture()
async def flaky() -> Any:
    """A real HTTP server that answers 503 (Retry-After) twice, then 200."""
    calls: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        calls.append(request.headers.get("Authorization", ""))
        if len(calls) % 3:
            body = {
                "error": {"code": "DISPLAY_UNAVAILABLE", "message": "later", "details": {}},
                "request_id": "r1",
            }
            return web.json_response(body, status=503, headers={"Retry-After": "1"})
        return web.json_response({"width": 10, "height": 20})

    app = web.Application()
    app.router.add_get("/desktop/screen-size", handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield server, calls


async def test_503_is_retried_after_retry_after(flaky: Any) -> None:
    server, calls = flaky
    url = str(server.make_url(""))
    async with AsyncAgent(url, token="t", max_retry_delay=0.01) as client:
        assert (await client.screen_size()).width == 10
    assert calls == ["Bearer t"] * 3
    async with AsyncAgent(url, token="t", retries=1, max_retry_delay=0.01) as client:
        with pytest.raises(sdk_errors.DisplayUnavailable) as refused:
            await client.screen_size()
    assert refused.value.retry_after == 1 and refused.value.request_id == "r1"


async def test_sync_client_retries_too(flaky: Any) -> None:
    import asyncio

    server, calls = flaky
    with Agent(str(server.make_url("")), token="t", max_retry_delay=0.01) as client:
        size = await asyncio.to_thread(client.screen_size)
    assert (size.width, size.height) == (10, 20) and len(calls) == 3


def test_the_generator_copes_with_operations_still_to_come() -> None:
    """Operations other work adds (new media kinds, models without a result, enums) still get a
    method that compiles, so merging them never breaks the SDK until it is regenerated."""
    import enum
    from typing import Literal

    from agent.actions.registry import Operation
    from agent.models.base import Request

    class Mode(enum.Enum):
        FAST = "fast"

    class FutureRequest(Request):
        type: Literal["future"] = "future"
        mode: Mode = Mode.FAST
        when: complex | None = None  # no source form: typed Any

    async def handler(services: Any, request: Any) -> Any:
        return None

    for media in ("events", "json", "websocket"):
        declaration: dict[str, Any] = {"route": "/future", "media": media}
        operation = Operation("future", FutureRequest, handler, "A future operation", **declaration)
        for is_async in (False, True):
            imports = generator.Imports()
            text = generator._method(operation, imports, is_async=is_async)
            compile("class C:\n" + text, "<generated>", "exec")
            assert "mode: Mode | None = None" in text and "when: Any" in text


@pytest.fixture()
async def unavailable() -> Any:
    """A real HTTP server answering every request 503 with the code the test asks for."""
    seen: list[str] = []
    code = {"value": "DISPLAY_UNAVAILABLE"}

    async def handle(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        request_id = request.headers.get("X-Request-Id", "r")  # as the agent: the caller's id
        body = {"error": {"code": code["value"], "message": "no", "details": {}}, "request_id": request_id}
        return web.json_response(body, status=503, headers={"Retry-After": "1"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")), seen, code


async def test_503s_that_retrying_would_change_are_not_retried(unavailable: Any) -> None:
    """BROWSER_CLOSED is reported at once even on a read (a relaunched browser is another page);
    an action answered 503 is not sent again (it may have run in part); a read is retried."""
    url, seen, code = unavailable
    async with AsyncAgent(url, retries=2, max_retry_delay=0.01) as client:
        code["value"] = "BROWSER_CLOSED"
        with pytest.raises(sdk_errors.BrowserClosed):
            await client.list_tabs()
        assert seen == ["GET /browser/tabs"]
        seen.clear()
        with pytest.raises(sdk_errors.BrowserClosed):
            await client.get_html_content()
        assert seen == ["POST /browser/html"]
        seen.clear()
        code["value"] = "DISPLAY_UNAVAILABLE"
        with pytest.raises(sdk_errors.DisplayUnavailable) as refused:
            await client.click(1, 2, request_id="mine-1")
        assert seen == ["POST /desktop/click"] and refused.value.request_id == "mine-1"
        seen.clear()
        with pytest.raises(sdk_errors.DisplayUnavailable):
            await client.screen_size()
        assert seen == ["GET /desktop/screen-size"] * 3
    seen.clear()
    with Agent(url, retries=2, max_retry_delay=0.01) as sync_client:
        with pytest.raises(sdk_errors.DisplayUnavailable):
            await asyncio.to_thread(sync_client.type, "x")
        assert seen == ["POST /desktop/type"]
        code["value"] = "BROWSER_CLOSED"
        seen.clear()
        with pytest.raises(sdk_errors.BrowserClosed):
            await asyncio.to_thread(sync_client.list_tabs)
        assert seen == ["GET /browser/tabs"]
