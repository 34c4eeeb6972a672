"""POST /compat/anthropic/computer: every action of Anthropic's computer tool, sent as the model
emits it (the tool_use ``input``), its effect observed independently (the GTK event logger,
xdotool, the pixels of the screenshot it answers), on the 1280x720 test desktop seen through a
1024x768 model space (the screen is a 1024x576 picture at (0, 96), black bands above and below).
"""

from __future__ import annotations

import math
import time

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.observers import EventLogger
from tests.x11.compat_helpers import (
    ANTHROPIC,
    XGA,
    anthropic_image,
    buttons,
    is_black,
    keyvals,
    mean_difference,
    move_pointer,
    png,
    pointer,
    post,
    refused,
)


def to_model(x: int, y: int) -> tuple[int, int]:
    """Screen pixel -> the model pixel showing it (1280x720 at 0.8, 96 px band on top)."""
    return math.floor((x + 0.5) * 0.8), math.floor((y + 0.5) * 0.8) + 96


def to_screen(x: int, y: int) -> tuple[int, int]:
    return math.floor((x + 0.5) / 0.8), math.floor((y - 96 + 0.5) / 0.8)


def act(client: httpx.Client, **payload: object) -> list[dict[str, object]]:
    content: list[dict[str, object]] = post(client, ANTHROPIC, payload, params=XGA)
    return content


@pytest.fixture(autouse=True)
def _screen_is_720p(client: httpx.Client) -> None:
    assert client.get("/desktop/screen-size").json() == {"width": 1280, "height": 720}


def test_the_issue_example_click_lands_on_the_screen_pixel(
    client: httpx.Client, logger: EventLogger, desktop: DevDesktop
) -> None:
    content = act(client, action="left_click", coordinate=[512, 384])
    assert buttons(logger.collect()) == [("press", 1, 640, 360), ("release", 1, 640, 360)]
    assert pointer(desktop) == (640, 360)
    # The answer is the tool_result content: one PNG at the model's size, the screen letterboxed.
    image = anthropic_image(content)
    assert image.size == (1024, 768)
    assert is_black(image, (0, 0, 1024, 96)) and is_black(image, (0, 672, 1024, 768))
    assert not is_black(image, (0, 96, 1024, 672))


def test_cursor_position_answers_in_the_model_space(client: httpx.Client, desktop: DevDesktop) -> None:
    for screen in ((640, 360), (0, 0), (1279, 719), (333, 222)):
        move_pointer(desktop, *screen)
        x, y = to_model(*screen)
        assert act(client, action="cursor_position") == [{"type": "text", "text": f"X={x},Y={y}"}]
    move_pointer(desktop, 640, 360)
    # Without a space: screen pixels.
    assert post(client, ANTHROPIC, {"action": "cursor_position"}) == [{"type": "text", "text": "X=640,Y=360"}]


def test_mouse_move_and_the_button_actions(
    client: httpx.Client, logger: EventLogger, desktop: DevDesktop
) -> None:
    cx, cy = logger.area_center
    mx, my = to_model(cx, cy)
    anthropic_image(act(client, action="mouse_move", coordinate=[mx, my]))
    assert pointer(desktop) == to_screen(mx, my)
    sx, sy = to_screen(mx, my)
    logger.drain()
    act(client, action="left_mouse_down")
    act(client, action="mouse_move", coordinate=[mx + 40, my + 20])
    act(client, action="left_mouse_up")
    events = logger.collect()
    ex, ey = to_screen(mx + 40, my + 20)
    assert buttons(events) == [("press", 1, sx, sy), ("release", 1, ex, ey)]
    assert any(e["event"] == "drag-motion" and (e["x"], e["y"]) == (ex, ey) for e in events)
    # With a coordinate, the press and the release happen there.
    act(client, action="left_mouse_down", coordinate=[mx, my])
    act(client, action="left_mouse_up", coordinate=[mx + 8, my])
    assert buttons(logger.collect()) == [("press", 1, sx, sy), ("release", 1, *to_screen(mx + 8, my))]


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("left_click", [("press", 1), ("release", 1)]),
        ("right_click", [("press", 3), ("release", 3)]),
        ("middle_click", [("press", 2), ("release", 2)]),
        ("double_click", [("press", 1), ("release", 1), ("press", 1), ("double", 1), ("release", 1)]),
        (
            "triple_click",
            [
                ("press", 1),
                ("release", 1),
                ("press", 1),
                ("double", 1),
                ("release", 1),
                ("press", 1),
                ("triple", 1),
                ("release", 1),
            ],
        ),
    ],
)
def test_clicks(
    client: httpx.Client, logger: EventLogger, action: str, expected: list[tuple[str, int]]
) -> None:
    cx, cy = logger.area_center
    mx, my = to_model(cx, cy)
    act(client, action=action, coordinate=[mx, my])
    events = buttons(logger.collect())
    assert [(kind, button) for kind, button, _, _ in events] == expected
    assert {(x, y) for _, _, x, y in events} == {to_screen(mx, my)}


def test_clicks_at_the_pointer_and_with_modifiers_held(
    client: httpx.Client, logger: EventLogger, desktop: DevDesktop
) -> None:
    cx, cy = logger.area_center
    move_pointer(desktop, cx, cy)
    logger.drain()
    act(client, action="left_click")  # no coordinate: where the pointer is
    assert buttons(logger.collect()) == [("press", 1, cx, cy), ("release", 1, cx, cy)]

    def held() -> tuple[bool, bool]:
        """(shift, ctrl) as the press of the one click since the last look saw them."""
        [press] = [e for e in logger.collect() if e["event"] == "button" and e["kind"] == "press"]
        return press["shift"], press["ctrl"]

    act(client, action="left_click", coordinate=list(to_model(cx, cy)), text="shift")
    assert held() == (True, False)
    act(client, action="left_click", text="ctrl+shift")
    assert held() == (True, True)
    act(client, action="left_click")
    assert held() == (False, False)  # nothing stayed held


def test_left_click_drag(client: httpx.Client, logger: EventLogger) -> None:
    cx, cy = logger.area_center
    start, end = to_model(cx - 100, cy - 50), to_model(cx + 100, cy + 50)
    act(client, action="left_click_drag", start_coordinate=list(start), coordinate=list(end))
    events = logger.collect()
    assert buttons(events) == [("press", 1, *to_screen(*start)), ("release", 1, *to_screen(*end))]
    motion = [(e["x"], e["y"]) for e in events if e["event"] == "drag-motion"]
    assert motion and motion[-1] == to_screen(*end)


def test_scroll_with_direction_amount_and_modifiers(client: httpx.Client, logger: EventLogger) -> None:
    cx, cy = logger.area_center
    mx, my = to_model(cx, cy)
    act(client, action="scroll", coordinate=[mx, my], scroll_direction="down", scroll_amount=3)
    events = logger.collect()
    assert [(e["direction"], e["x"], e["y"]) for e in events if e["event"] == "scroll"] == [
        ("down", *to_screen(mx, my))
    ] * 3
    act(client, action="scroll", coordinate=[mx, my], scroll_direction="left", scroll_amount=2, text="ctrl")
    events = logger.collect()
    assert [e["direction"] for e in events if e["event"] == "scroll"] == ["left", "left"]
    assert "Control_L" in keyvals(events)  # held while scrolling (the focused entry sees it)
    act(client, action="scroll", coordinate=[mx, my], scroll_direction="up", scroll_amount=0)
    assert [e for e in logger.collect() if e["event"] == "scroll"] == []


def test_keys_typing_and_holding(client: httpx.Client, logger: EventLogger) -> None:
    act(client, action="type", text="héllo wörld")
    act(client, action="key", text="ctrl+a BackSpace")  # xdotool syntax: two chords
    act(client, action="type", text="computer use")
    act(client, action="key", text="Return")
    assert logger.next("entry")["text"] == "computer use"
    logger.drain()
    started = time.monotonic()
    act(client, action="hold_key", text="shift", duration=0.5)
    assert time.monotonic() - started >= 0.5
    assert keyvals(logger.collect()) == ["Shift_L"]


def test_wait_screenshot_and_zoom(client: httpx.Client, logger: EventLogger) -> None:
    started = time.monotonic()
    image = anthropic_image(act(client, action="wait", duration=0.3))
    assert time.monotonic() - started >= 0.3 and image.size == (1024, 768)
    assert anthropic_image(act(client, action="screenshot")).size == (1024, 768)
    # Without a space the screenshot is the screen's size.
    assert anthropic_image(post(client, ANTHROPIC, {"action": "screenshot"})).size == (1280, 720)
    # zoom: the model-space rectangle, captured at full resolution and fitted into 1024x768.
    # Around the top-left corner of the app's event area: window frame, entry, desktop.
    x0, y0 = to_model(logger.ready["area_x"] - 40, logger.ready["area_y"] - 40)
    zoomed = anthropic_image(act(client, action="zoom", region=[x0, y0, x0 + 256, y0 + 192]))
    assert zoomed.size == (1024, 768)
    sx, sy = to_screen(x0, y0)
    # The same pixels as the region captured at screen size (no space), enlarged 3.2 times.
    region = client.post("/desktop/screenshot/region", json={"x": sx, "y": sy, "width": 320, "height": 240})
    assert region.status_code == 200
    assert mean_difference(zoomed.resize((320, 240)), png(region.content)) < 8


def test_bad_input_is_a_400_naming_it(client: httpx.Client) -> None:
    assert "unknown action 'fly'" in refused(client, ANTHROPIC, {"action": "fly"}, params=XGA)
    assert "coordinate: required" in refused(client, ANTHROPIC, {"action": "mouse_move"}, params=XGA)
    assert "outside the 1024x768 coordinate space" in refused(
        client, ANTHROPIC, {"action": "left_click", "coordinate": [1500, 300]}, params=XGA
    )
    assert "letterbox" in refused(
        client, ANTHROPIC, {"action": "left_click", "coordinate": [500, 40]}, params=XGA
    )
    assert "unknown key name 'hyper_space'" in refused(
        client,
        ANTHROPIC,
        {"action": "left_click", "coordinate": [500, 300], "text": "hyper_space"},
        params=XGA,
    )
    assert "colour" in refused(client, ANTHROPIC, {"action": "screenshot", "colour": "red"})
    assert "display_height_px" in refused(
        client, ANTHROPIC, {"action": "screenshot"}, params={"display_width_px": "1024"}
    )
    assert "X-Coordinate-Space" in refused(
        client, ANTHROPIC, {"action": "screenshot"}, headers={"X-Coordinate-Space": "big"}
    )
    assert "region" in refused(
        client, ANTHROPIC, {"action": "zoom", "region": [300, 300, 200, 400]}, params=XGA
    )
    assert "duration" in refused(client, ANTHROPIC, {"action": "wait", "duration": 500}, params=XGA)


def test_ambiguous_modifiers_and_drag_points_are_named(client: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    body = {"action": "left_click", "coordinate": [x, y], "text": "shift", "key": "ctrl"}
    assert "not both" in refused(client, ANTHROPIC, body)
    assert buttons(logger.collect()) == []  # refused before any input
    drag = {"action": "left_click_drag", "start_coordinate": [x, y], "coordinate": [500, 10]}
    message = refused(client, ANTHROPIC, drag, params=XGA)
    assert message.startswith("coordinate:") and "end_y" not in message and "letterbox" in message
    drag = {"action": "left_click_drag", "start_coordinate": [500, 10], "coordinate": [x, y]}
    assert refused(client, ANTHROPIC, drag, params=XGA).startswith("start_coordinate:")
    assert buttons(logger.collect()) == []


def test_the_documents_compat_examples_work_when_sent(client: httpx.Client) -> None:
    """docs/api.md's curl lines come from these examples: each is accepted, and the answer
    has the shape of the document's example answer (blocks and output with their `type`)."""
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path in (ANTHROPIC, "/compat/openai/computer"):
        operation = document["paths"][path]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        [example] = schemas[ref]["examples"]
        answer = post(client, path, example)
        blocks = answer if isinstance(answer, list) else [answer]
        assert all("type" in block for block in blocks), answer
        answer_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        [documented] = schemas[answer_ref.rsplit("/", 1)[1]]["examples"]
        shown = documented if isinstance(documented, list) else [documented]
        assert [block["type"] for block in shown] == [block["type"] for block in blocks]
