"""X-Coordinate-Space on every route (plain /desktop/*, /actions, /batch), and /desktop/zoom, on
the 1280x720 test desktop: clicks observed by the GTK event logger, the pointer and windows by
xdotool and xwininfo, screenshots by their pixels."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.observers import EventLogger
from tests.waiting import wait_until
from tests.x11.compat_helpers import (
    ANTHROPIC,
    OPENAI,
    buttons,
    is_black,
    mean_difference,
    move_pointer,
    png,
    pointer,
    post,
    refused,
)
from tests.x11.windowing import observed, start_app, stop_app, window_of

SPACE = {"X-Coordinate-Space": "1024x768"}


def to_model(x: int, y: int) -> tuple[int, int]:
    return math.floor((x + 0.5) * 0.8), math.floor((y + 0.5) * 0.8) + 96


def to_screen(x: int, y: int) -> tuple[int, int]:
    return math.floor((x + 0.5) / 0.8), math.floor((y - 96 + 0.5) / 0.8)


def test_plain_routes_click_and_read_the_pointer_in_the_space(
    client: httpx.Client, logger: EventLogger, desktop: DevDesktop
) -> None:
    assert client.post("/desktop/click", json={"x": 512, "y": 384}, headers=SPACE).json() == {"success": True}
    assert buttons(logger.collect()) == [("press", 1, 640, 360), ("release", 1, 640, 360)]
    assert client.get("/desktop/cursor", headers=SPACE).json() == {"x": 512, "y": 384}
    assert client.get("/desktop/cursor").json() == {"x": 640, "y": 360}
    move_pointer(desktop, 1279, 0)
    assert client.get("/desktop/cursor", headers=SPACE).json() == {"x": 1023, "y": 96}
    # A drag's both ends, a move.
    cx, cy = logger.area_center
    start, end = to_model(cx - 50, cy - 50), to_model(cx + 50, cy + 30)
    body = {"start_x": start[0], "start_y": start[1], "end_x": end[0], "end_y": end[1]}
    assert client.post("/desktop/drag", json=body, headers=SPACE).status_code == 200
    assert buttons(logger.collect()) == [("press", 1, *to_screen(*start)), ("release", 1, *to_screen(*end))]
    assert client.post("/desktop/move", json={"x": 100, "y": 200}, headers=SPACE).status_code == 200
    assert pointer(desktop) == to_screen(100, 200)


def test_actions_and_batch_take_the_space(
    client: httpx.Client, logger: EventLogger, desktop: DevDesktop
) -> None:
    mx, my = to_model(*logger.area_center)
    answer = client.post("/actions", json={"type": "click", "x": mx, "y": my}, headers=SPACE)
    assert answer.status_code == 200, answer.text
    assert buttons(logger.collect()) == [("press", 1, *to_screen(mx, my)), ("release", 1, *to_screen(mx, my))]
    batch = {"actions": [{"type": "move", "x": 300, "y": 400}, {"type": "cursor_position"}]}
    steps = client.post("/batch", json=batch, headers=SPACE).json()["results"]
    assert steps[1]["result"] == {"x": 300, "y": 400}
    assert pointer(desktop) == to_screen(300, 400)
    # A step off the space fails, naming the field and the space.
    batch = {"actions": [{"type": "move", "x": 10, "y": 10}]}
    answer = client.post("/batch", json=batch, headers=SPACE)
    assert answer.status_code == 200 and "letterbox" in answer.json()["results"][0]["error"]["message"]
    assert "outside the 1024x768" in refused(
        client, "/actions", {"type": "click", "x": 1024, "y": 300}, headers=SPACE
    )


def test_screenshots_are_letterboxed_into_the_space(client: httpx.Client, logger: EventLogger) -> None:
    answer = client.get("/desktop/screenshot", headers=SPACE)
    image = png(answer.content)
    assert image.size == (1024, 768)
    assert is_black(image, (0, 0, 1024, 96)) and is_black(image, (0, 672, 1024, 768))
    # The picture between the bands is the screen, scaled by 0.8.
    screen = png(client.get("/desktop/screenshot").content)
    assert mean_difference(image.crop((0, 96, 1024, 672)), screen.resize((1024, 576))) < 6
    as_json = client.post("/actions", json={"type": "screenshot"}, headers=SPACE).json()["result"]
    assert (as_json["width"], as_json["height"]) == (1024, 768)
    # A region in model pixels comes at the space's scale: 200x100 model pixels.
    region = client.post(
        "/desktop/screenshot/region", json={"x": 100, "y": 200, "width": 200, "height": 100}, headers=SPACE
    )
    assert png(region.content).size == (200, 100)
    assert "max_width" in refused(client, "/actions", {"type": "screenshot", "max_width": 500}, headers=SPACE)


@pytest.fixture()
def zenity(desktop: DevDesktop) -> Iterator[int]:
    proc = start_app(desktop, "zenity", "--entry", "--title", "space")
    yield window_of(desktop, proc.pid)
    stop_app(proc)


def test_windows_come_and_go_in_the_space(client: httpx.Client, desktop: DevDesktop, zenity: int) -> None:
    wid = hex(zenity)
    base = f"/desktop/window/{wid}"
    assert client.post(f"{base}/move", json={"x": 100, "y": 200}, headers=SPACE).status_code == 200
    target = to_screen(100, 200)
    wait_until(
        lambda: (observed(desktop, zenity).abs_x, observed(desktop, zenity).abs_y) == target, what="the move"
    )
    assert client.post(f"{base}/resize", json={"width": 400, "height": 200}, headers=SPACE).status_code == 200
    wait_until(
        lambda: (observed(desktop, zenity).width, observed(desktop, zenity).height) == (500, 250), what="size"
    )
    seen = observed(desktop, zenity)
    [listed] = [w for w in client.get("/desktop/windows", headers=SPACE).json()["windows"] if w["id"] == wid]
    assert (listed["x"], listed["y"]) == to_model(seen.abs_x, seen.abs_y)
    assert (listed["width"], listed["height"]) == (round(seen.width * 0.8), round(seen.height * 0.8))
    assert client.get(f"{base}/position", headers=SPACE).json() == {"x": 100, "y": 200}
    assert client.get(f"{base}/size", headers=SPACE).json() == {"width": 400, "height": 200}


def test_zoom(client: httpx.Client, logger: EventLogger) -> None:
    area = {"x": logger.ready["area_x"] - 30, "y": logger.ready["area_y"] - 30, "width": 100, "height": 50}
    doubled = client.post("/desktop/zoom", json={**area, "scale": 2})
    assert doubled.status_code == 200, doubled.text
    assert doubled.headers["Content-Type"] == "image/png"
    region = png(client.post("/desktop/screenshot/region", json=area).content)
    assert mean_difference(png(doubled.content).resize((100, 50)), region) < 8
    # Without a scale: fitted into the screen (1280x720): 12.8 times.
    assert png(client.post("/desktop/zoom", json=area).content).size == (1280, 640)
    assert png(client.post("/desktop/zoom", json={**area, "max_width": 300}).content).size == (300, 150)
    # Under a space the box is the space, the region in its pixels.
    fitted = client.post("/desktop/zoom", json={"x": 100, "y": 200, "width": 64, "height": 48}, headers=SPACE)
    assert png(fitted.content).size == (1024, 768)
    as_action = client.post("/actions", json={"type": "zoom", **area, "scale": 3}).json()["result"]
    assert (as_action["width"], as_action["height"]) == (300, 150)
    assert "scale" in refused(client, "/desktop/zoom", {**area, "scale": 100})
    assert "outside" in refused(client, "/desktop/zoom", {"x": 5000, "y": 10, "width": 10, "height": 10})


@pytest.mark.parametrize("value", ["1024", "1024x", "0x768", "axb", "99999x99999"])
def test_a_bad_space_is_a_400_everywhere(client: httpx.Client, value: str) -> None:
    header = {"X-Coordinate-Space": value}
    for answer in (
        client.get("/desktop/cursor", headers=header),
        client.post("/desktop/click", json={"x": 1, "y": 1}, headers=header),
        client.post("/actions", json={"type": "cursor_position"}, headers=header),
        client.post("/batch", json={"actions": []}, headers=header),
    ):
        assert answer.status_code == 400, (value, answer.text)
        assert "X-Coordinate-Space" in answer.json()["error"]["message"]


def test_the_document_declares_the_header_on_every_operation(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        if path == "/mcp":  # MCP tool calls carry no per-call HTTP headers: not (yet) in a space
            continue
        for method, operation in item.items():
            names = {parameter["name"] for parameter in operation.get("parameters", [])}
            assert "X-Coordinate-Space" in names, (method, path)
            if path.startswith("/compat/"):
                assert {"display_width_px", "display_height_px"} <= names, path


def test_screenshot_after_comes_in_the_space(client: httpx.Client, logger: EventLogger) -> None:
    body = {"x": 512, "y": 384, "screenshot_after": {}}
    answer = client.post("/desktop/click", json=body, headers=SPACE).json()
    assert buttons(logger.collect()) == [("press", 1, 640, 360), ("release", 1, 640, 360)]
    shot = answer["screenshot"]
    assert (shot["width"], shot["height"]) == (1024, 768)
    image = png(base64.b64decode(shot["image"]))
    assert image.size == (1024, 768) and is_black(image, (0, 0, 1024, 96))


def test_wait_for_regions_are_in_the_space(client: httpx.Client) -> None:
    body = {
        "condition": "screen_changed",
        "region": {"x": 10, "y": 10, "width": 50, "height": 50},
        "timeout": 0.2,
    }
    assert "region.y: 10 is in the letterbox padding" in refused(
        client, "/desktop/wait-for", body, headers=SPACE
    )
    body["region"] = {"x": 10, "y": 200, "width": 50, "height": 50}
    answer = client.post("/desktop/wait-for", json=body, headers=SPACE)
    assert answer.status_code == 200, answer.text


def test_wait_for_answers_windows_in_the_space(
    client: httpx.Client, desktop: DevDesktop, zenity: int
) -> None:
    seen = observed(desktop, zenity)
    body = {"condition": "window", "title": "^space$", "timeout": 5}
    plain = client.post("/desktop/wait-for", json=body).json()["window"]
    assert (plain["x"], plain["y"]) == (seen.abs_x, seen.abs_y)
    waited = client.post("/desktop/wait-for", json=body, headers=SPACE).json()["window"]
    [listed] = [
        w for w in client.get("/desktop/windows", headers=SPACE).json()["windows"] if w["id"] == hex(zenity)
    ]
    assert (waited["x"], waited["y"]) == to_model(seen.abs_x, seen.abs_y)
    assert {k: waited[k] for k in ("x", "y", "width", "height")} == {
        k: listed[k] for k in ("x", "y", "width", "height")
    }
    batch = {"actions": [{"type": "wait_for", **body}]}
    [step] = client.post("/batch", json=batch, headers=SPACE).json()["results"]
    assert (step["result"]["window"]["x"], step["result"]["window"]["y"]) == to_model(seen.abs_x, seen.abs_y)


@pytest.mark.parametrize("sizing", [{"scale": 0.5}, {"max_width": 300}, {"max_height": 200, "scale": 0.5}])
def test_screenshot_after_sizing_is_refused_under_a_space_before_acting(
    client: httpx.Client, logger: EventLogger, sizing: dict[str, float]
) -> None:
    body = {"x": 512, "y": 384, "screenshot_after": sizing}
    message = refused(client, "/desktop/click", body, headers=SPACE)
    assert all(name in message for name in sizing), message
    assert "X-Coordinate-Space" in message
    assert buttons(logger.collect()) == []  # refused before the click
    screenshot = client.get("/desktop/screenshot", params=sizing, headers=SPACE)
    assert screenshot.status_code == 400  # as the screenshot route refuses them
    batch = {"actions": [{"type": "key", "key": "shift", "screenshot_after": sizing}]}
    [step] = client.post("/batch", json=batch, headers=SPACE).json()["results"]
    assert step["error"]["code"] == screenshot.json()["error"]["code"]
    # Without a space they size the image.
    plain = client.post("/desktop/key", json={"key": "shift", "screenshot_after": {"max_width": 300}}).json()
    assert plain["screenshot"]["width"] == 300


def test_a_space_larger_than_8192_is_a_400(client: httpx.Client) -> None:
    for value in ("8193x768", "16384x16384"):
        answer = client.get("/desktop/cursor", headers={"X-Coordinate-Space": value})
        assert answer.status_code == 400 and "8192" in answer.json()["error"]["message"], answer.text
    assert client.get("/desktop/cursor", headers={"X-Coordinate-Space": "8192x4608"}).status_code == 200


def test_a_space_given_twice_is_a_400(client: httpx.Client) -> None:
    twice = [("X-Coordinate-Space", "1024x768"), ("X-Coordinate-Space", "640x360")]
    answer = client.get("/desktop/cursor", headers=twice)
    assert answer.status_code == 400 and "X-Coordinate-Space" in answer.json()["error"]["message"]
    query = "display_width_px=1024&display_width_px=640&display_height_px=768"
    message = refused(client, f"{ANTHROPIC}?{query}", {"action": "cursor_position"})
    assert "display_width_px" in message and "once" in message


def test_openais_display_width_names_declare_the_space(client: httpx.Client, desktop: DevDesktop) -> None:
    params = {"display_width": "1024", "display_height": "768"}
    post(client, OPENAI, {"type": "move", "x": 512, "y": 384}, params=params)
    assert pointer(desktop) == (640, 360)
    both = {**params, "display_width_px": "1024", "display_height_px": "768"}
    assert "not both" in refused(client, OPENAI, {"type": "screenshot"}, params=both)
