"""The HTTP contract over a fake desktop: auth, envelope, validation, /actions, /batch."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.actions.registry import load_all
from agent.api.app import create_app
from agent.config import Config
from agent.services import Services
from tests.fakes import FakeDesktop
from tests.unit.conftest import TOKEN, Api


async def test_health_needs_no_token(api: Api) -> None:
    response = await api.get("/health", headers={"Authorization": ""})
    assert response.status == 200
    assert (await response.json())["status"] == "ok"


async def test_every_route_but_health_needs_the_token(api: Api) -> None:
    routes = {(r.method, r.resource.canonical) for r in api.app.router.routes() if r.resource is not None}
    assert len(routes) > 20
    for method, path in sorted(routes):
        if path == "/health" or method == "HEAD":
            continue
        concrete = path.replace("{window_id}", "0x1").replace("{id}", "1").replace("{tail:.*}", "x")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dXNlcg=="}):
            response = await api.request(method, concrete, headers={"Authorization": "", **headers})
            assert response.status == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            body = await response.json()
            assert body["error"]["code"] == "UNAUTHENTICATED"


async def test_request_id_is_echoed_or_made(api: Api) -> None:
    response = await api.get("/desktop/screen-size", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    response = await api.get("/nope")
    made = response.headers["X-Request-Id"]
    assert made and (await response.json())["request_id"] == made


async def test_unknown_route_and_method(api: Api) -> None:
    response = await api.get("/desktop/nope")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "ROUTE_NOT_FOUND"
    response = await api.get("/desktop/click")
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_body_over_the_limit_is_413(api: Api) -> None:
    big = io.BytesIO(b'{"text": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    response = await api.post("/desktop/type", data=big, headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    ("route", "body", "fragment"),
    [
        ("/desktop/click", b"not json", "not valid JSON"),
        ("/desktop/click", b"[1,2]", "JSON object"),
        ("/desktop/click", b'{"x": 5000, "y": 10}', "outside the 1280x720 screen"),
        ("/desktop/click", b'{"x": -1, "y": 10}', "outside the 1280x720 screen"),
        ("/desktop/click", b'{"x": "left", "y": 10}', "x:"),
        ("/desktop/click", b'{"x": 5}', "give both x and y"),
        ("/desktop/click", b'{"x": 5, "y": 5, "button": "fourth"}', "button"),
        ("/desktop/click", b'{"x": 5, "y": 5, "buton": "left"}', "buton: unknown field"),
        ("/desktop/click", b'{"x": 5, "y": 5, "modifiers": ["hyperctrl"]}', "hyperctrl"),
        ("/desktop/move", b"{}", "x: Field required"),
        ("/desktop/key", b'{"key": "ctrl+frobnicate"}', "frobnicate"),
        ("/desktop/key", b'{"key": ""}', "empty"),
        ("/desktop/hotkey", b'{"keys": []}', "keys"),
        ("/desktop/hotkey", b'{"keys": ["ctrl", "nokey"]}', "nokey"),
        ("/desktop/key-down", b'{"key": "notakey"}', "notakey"),
        ("/desktop/type", b'{"text": "a\\u0001b"}', "U+0001"),
        ("/desktop/type", b'{"text": 5}', "text"),
        ("/desktop/scroll", b'{"x": 1, "y": 1}', "direction"),
        ("/desktop/scroll", b'{"x": 1, "y": 1, "direction": "sideways"}', "direction"),
        ("/desktop/drag", b'{"start_x": 1, "start_y": 1, "end_x": 99999, "end_y": 1}', "end (99999,1)"),
        ("/desktop/wait", b'{"seconds": 31}', "seconds"),
        ("/desktop/type", b'{"text": "' + b"x" * 31 + b'", "delay_ms": 1000}', "limit is 30 s"),
        (
            "/batch",
            b'{"actions": [{"type": "type", "text": "' + b"x" * 61 + b'", "delay_ms": 500}]}',
            "30.5 s",
        ),
        ("/desktop/wait", b'{"seconds": -1}', "seconds"),
        ("/desktop/screenshot/region", b'{"x": 2000, "y": 0, "width": 10, "height": 10}', "outside"),
        ("/desktop/screenshot/region", b'{"x": 0, "y": 0, "width": 0, "height": 10}', "width"),
        ("/actions", b'{"type": "teleport"}', "unknown action type 'teleport'"),
        ("/actions", b'{"x": 1}', "no 'type'"),
        ("/batch", b'{"actions": [{"type": "move", "x": 1, "y": 1}, {"type": "bogus"}]}', "actions[1]"),
        ("/batch", b'{"actions": "no"}', "actions"),
    ],
)
async def test_bad_input_is_a_400_that_names_the_problem(
    api: Api, fake_desktop: FakeDesktop, route: str, body: bytes, fragment: str
) -> None:
    response = await api.post(route, data=body)
    assert response.status == 400, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert fragment in error["message"], error["message"]
    assert not [entry for entry in fake_desktop.log if entry[0] not in {"release_all"}]


async def test_bad_query_is_a_400(api: Api) -> None:
    for query in ("format=gif", "scale=0", "scale=2", "quality=0", "max_width=abc", "quality=7.5"):
        response = await api.get(f"/desktop/screenshot?{query}")
        assert response.status == 400, query


async def test_a_scale_that_is_not_a_number_is_named_so(api: Api) -> None:
    for route in ("/desktop/screenshot", "/screencast"):
        for value in ("nan", "inf"):
            response = await api.get(f"{route}?scale={value}")
            error = (await response.json())["error"]
            assert response.status == 400 and "finite number" in error["message"], (route, error)


async def test_rest_actions_reach_the_backend(api: Api, fake_desktop: FakeDesktop) -> None:
    async def post(route: str, body: dict[str, object]) -> dict[str, object]:
        response = await api.post(route, json=body)
        assert response.status == 200, await response.text()
        return dict(await response.json())

    assert await post("/desktop/click", {"x": 1, "y": 2, "modifiers": "ctrl+shift"}) == {"success": True}
    await post("/desktop/double-click", {"x": 3, "y": 4})
    await post("/desktop/triple-click", {"x": 3, "y": 4})
    await post("/desktop/right-click", {"x": 5, "y": 6})
    await post("/desktop/drag", {"x1": 1, "y1": 1, "x2": 9, "y2": 9})
    await post("/desktop/scroll", {"x": 1, "y": 1, "direction": "left", "amount": 2})
    await post("/desktop/key", {"key": "ctrl+a Delete"})
    await post("/desktop/hotkey", {"keys": ["ctrl", "shift", "t"]})
    assert fake_desktop.log == [
        ("click", 1, 2, "left", 1, ("ctrl", "shift")),
        ("click", 3, 4, "left", 2, ()),
        ("click", 3, 4, "left", 3, ()),
        ("click", 5, 6, "right", 1, ()),
        ("drag", fake_desktop.log[4][1], fake_desktop.log[4][2], "left"),
        ("scroll", 1, 1, -2, 0),
        ("keys", [["ctrl", "a"], ["Delete"]], False),
        ("keys", [["ctrl", "shift", "t"]], True),
    ]
    waited = await post("/desktop/wait", {"seconds": 0.01})
    assert waited["success"] is True and 0.005 < float(str(waited["waited_seconds"])) < 1


async def test_click_without_point_uses_the_pointer(api: Api, fake_desktop: FakeDesktop) -> None:
    await api.post("/desktop/move", json={"x": 40, "y": 50})
    response = await api.post("/desktop/click", json={})
    assert response.status == 200
    assert fake_desktop.log[-1][:3] == ("click", 40, 50)


async def test_screenshot_formats_and_headers(api: Api) -> None:
    for fmt, magic in (("png", b"\x89PNG"), ("jpeg", b"\xff\xd8"), ("webp", b"RIFF")):
        response = await api.get(f"/desktop/screenshot?format={fmt}")
        assert response.status == 200
        assert response.content_type == f"image/{fmt}"
        assert (await response.read()).startswith(magic)
        assert response.headers["X-Screen-Width"] == "1280"
    response = await api.get("/desktop/screenshot?base64=true&max_width=640&format=jpeg")
    body = await response.json()
    assert (body["format"], body["width"], body["height"]) == ("jpeg", 640, 360)
    response = await api.post(
        "/desktop/screenshot/region", json={"x": 1200, "y": 700, "width": 200, "height": 200}
    )
    assert response.headers["X-Image-Width"] == "80" and response.headers["X-Image-Height"] == "20"


async def test_actions_endpoint(api: Api, fake_desktop: FakeDesktop) -> None:
    response = await api.post("/actions", json={"type": "click", "x": 10, "y": 20})
    assert await response.json() == {"success": True, "result": {}}
    response = await api.post("/actions", json={"type": "cursor_position"})
    assert await response.json() == {"success": True, "result": {"x": 10, "y": 20}}
    response = await api.post("/actions", json={"type": "keypress", "keys": ["ctrl", "c"]})
    assert response.status == 200 and fake_desktop.log[-1] == ("keys", [["ctrl", "c"]], False)
    response = await api.post("/actions", json={"type": "screenshot", "format": "png"})
    result = (await response.json())["result"]
    assert result["format"] == "png" and result["image"].startswith("iVBOR")


async def test_batch_runs_in_order_and_stops_on_error(api: Api, fake_desktop: FakeDesktop) -> None:
    body: dict[str, object] = {
        "actions": [
            {"type": "key_down", "key": "shift"},
            {"type": "move", "x": 5, "y": 5},
            {"type": "click", "x": 99999, "y": 5},
            {"type": "move", "x": 6, "y": 6},
        ]
    }
    answer = await (await api.post("/batch", json=body)).json()
    assert answer["success"] is False
    assert [(r["index"], r["type"], r["success"]) for r in answer["results"]] == [
        (0, "key_down", True),
        (1, "move", True),
        (2, "click", False),
    ]
    assert answer["results"][2]["error"]["code"] == "INVALID_ARGUMENT"
    assert all(r["duration_ms"] >= 0 for r in answer["results"])
    assert ("release_all", ("shift",)) in fake_desktop.log  # held keys released after the failure
    body["stop_on_error"] = False
    answer = await (await api.post("/batch", json=body)).json()
    assert [r["success"] for r in answer["results"]] == [True, True, False, True]


async def test_display_down_is_503_with_retry_after(api: Api, fake_desktop: FakeDesktop) -> None:
    fake_desktop.available = False
    response = await api.post("/desktop/click", json={"x": 1, "y": 1})
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["error"]["code"] == "DISPLAY_UNAVAILABLE"


async def test_openapi_lists_every_registry_route(api: Api) -> None:
    document = await (await api.get("/openapi.json")).json()
    for action in load_all():
        if action.route:
            assert action.method.lower() in document["paths"][action.route], action.route
    mapping = document["components"]["schemas"]["Action"]["discriminator"]["mapping"]
    assert set(mapping) == {action.type for action in load_all().actions()}
    json.dumps(document)


async def test_commands_and_apps_can_be_switched_off(fake_desktop: FakeDesktop, token_file: Path) -> None:
    """--exec false: commands, files and app launches answer 403 and run nothing."""
    config = Config(token_file=token_file, display=":fake", exec_enabled=False)
    app = create_app(config, Services(config=config, desktop=fake_desktop))
    async with TestClient(TestServer(app)) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for method, route, body in (
            ("POST", "/exec", {"command": "true"}),
            ("POST", "/actions", {"type": "bash", "script": "true"}),
            ("POST", "/desktop/launch", {"app": "xterm"}),
            ("GET", "/files?path=/etc/hostname", None),
        ):
            response = await client.request(method, route, json=body, headers=headers)
            assert response.status == 403, (route, await response.text())
            assert (await response.json())["error"]["code"] in ("EXEC_DISABLED", "FILES_DISABLED")


async def test_a_refused_body_is_described_without_echoing_it(api: Api) -> None:
    """A rule spanning fields names the problem in its own words: no pydantic prefix, no
    echo of the whole object (with fields the caller never sent, such as the operation's type)."""
    response = await api.post("/desktop/wait-for", json={"condition": "window", "timeout": 1})
    assert response.status == 400
    message = (await response.json())["error"]["message"]
    assert "Value error" not in message and "(got {" not in message and "'type'" not in message, message
    assert "title" in message or "class" in message, message
