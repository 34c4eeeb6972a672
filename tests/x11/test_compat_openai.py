"""POST /compat/openai/computer: every action of an OpenAI computer_call, sent as the model emits
it (the call's ``action``), its effect observed independently (the GTK event logger, xdotool),
the answer the computer_call_output's ``output`` (a PNG data URL), on the 1280x720 test desktop
seen through a 1024x768 model space (X-Coordinate-Space).
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.observers import EventLogger
from tests.x11.compat_helpers import (
    OPENAI,
    MotionRecorder,
    buttons,
    keyvals,
    openai_image,
    pointer,
    post,
    refused,
)

SPACE = {"X-Coordinate-Space": "1024x768"}


def to_model(x: int, y: int) -> tuple[int, int]:
    return math.floor((x + 0.5) * 0.8), math.floor((y + 0.5) * 0.8) + 96


def to_screen(x: int, y: int) -> tuple[int, int]:
    return math.floor((x + 0.5) / 0.8), math.floor((y - 96 + 0.5) / 0.8)


def act(client: httpx.Client, **action: object) -> dict[str, object]:
    output: dict[str, object] = post(client, OPENAI, action, headers=SPACE)
    assert openai_image(output).size == (1024, 768)  # every answer: the screen after, as the model sees it
    return output


def test_the_issue_example_click(client: httpx.Client, logger: EventLogger, desktop: DevDesktop) -> None:
    act(client, type="click", button="left", x=512, y=384)
    assert buttons(logger.collect()) == [("press", 1, 640, 360), ("release", 1, 640, 360)]
    assert pointer(desktop) == (640, 360)


@pytest.mark.parametrize(
    ("button", "number"), [("left", 1), ("right", 3), ("wheel", 2), ("back", 8), ("forward", 9)]
)
def test_click_buttons(client: httpx.Client, logger: EventLogger, button: str, number: int) -> None:
    mx, my = to_model(*logger.area_center)
    act(client, type="click", button=button, x=mx, y=my)
    assert buttons(logger.collect()) == [
        ("press", number, *to_screen(mx, my)),
        ("release", number, *to_screen(mx, my)),
    ]


def test_double_click_and_click_with_keys_held(client: httpx.Client, logger: EventLogger) -> None:
    mx, my = to_model(*logger.area_center)
    act(client, type="double_click", x=mx, y=my)
    kinds = [(kind, button) for kind, button, _, _ in buttons(logger.collect())]
    assert kinds == [("press", 1), ("release", 1), ("press", 1), ("double", 1), ("release", 1)]
    time.sleep(0.5)  # past GTK's double-click time: the next click is a click of its own
    logger.drain()
    act(client, type="click", button="left", x=mx, y=my, keys=["CTRL"])
    [press] = [e for e in logger.collect() if e["event"] == "button" and e["kind"] == "press"]
    assert press["ctrl"] and not press["shift"]


def test_drag_along_a_path(client: httpx.Client, logger: EventLogger, desktop: DevDesktop) -> None:
    cx, cy = logger.area_center
    path = [to_model(cx - 100, cy), to_model(cx, cy - 80), to_model(cx + 120, cy + 40)]
    recorder = MotionRecorder(desktop.display)
    try:
        act(client, type="drag", path=[{"x": x, "y": y} for x, y in path])
        events = logger.collect()
    finally:
        recorder.close()
    assert buttons(events) == [("press", 1, *to_screen(*path[0])), ("release", 1, *to_screen(*path[2]))]
    # The server saw the pointer pass through every point, in order (the app compresses motion).
    passed = [point for point in recorder.points if point in {to_screen(*p) for p in path}]
    assert [to_screen(*p) for p in path] == list(dict.fromkeys(passed))


def test_move_and_scroll_in_pixels(client: httpx.Client, logger: EventLogger, desktop: DevDesktop) -> None:
    mx, my = to_model(*logger.area_center)
    act(client, type="move", x=mx, y=my)
    assert pointer(desktop) == to_screen(mx, my)
    logger.drain()
    act(client, type="scroll", x=mx, y=my, scroll_x=0, scroll_y=300)  # 100 px a wheel notch
    act(client, type="scroll", x=mx, y=my, scroll_x=-200, scroll_y=0)
    act(client, type="scroll", x=mx, y=my, scroll_x=0, scroll_y=-100)
    scrolls = [(e["direction"], e["x"], e["y"]) for e in logger.collect() if e["event"] == "scroll"]
    at = to_screen(mx, my)
    assert scrolls == [("down", *at)] * 3 + [("left", *at)] * 2 + [("up", *at)]


def test_keypress_type_wait_and_screenshot(client: httpx.Client, logger: EventLogger) -> None:
    act(client, type="type", text="Hello, wörld")
    act(client, type="keypress", keys=["CTRL", "A"])
    act(client, type="keypress", keys=["BACKSPACE"])
    act(client, type="type", text="openai")
    act(client, type="keypress", keys=["ARROWLEFT"])
    act(client, type="keypress", keys=["HOME"])
    act(client, type="keypress", keys=["SHIFT", "X"])  # a letter names its key: shift+x types X
    act(client, type="keypress", keys=["END"])
    act(client, type="keypress", keys=["SPACE"])
    act(client, type="keypress", keys=["/"])
    act(client, type="keypress", keys=["ENTER"])
    assert logger.next("entry")["text"] == "Xopenai /"
    logger.drain()
    named = [("ESC", "Escape"), ("DELETE", "Delete"), ("PAGEUP", "Page_Up"), ("PAGEDOWN", "Page_Down")]
    named += [
        ("F5", "F5"),
        ("ARROWUP", "Up"),
        ("ARROWDOWN", "Down"),
        ("TAB", "Tab"),
    ]  # may move the focus: last
    for name, keyval in named:
        act(client, type="keypress", keys=[name])
        assert keyvals(logger.collect()) == [keyval], name
    started = time.monotonic()
    act(client, type="wait")
    assert time.monotonic() - started >= 2
    act(client, type="screenshot")
    # Without a space: the screen's size.
    assert openai_image(post(client, OPENAI, {"type": "screenshot"})).size == (1280, 720)


def test_bad_actions_are_a_400_naming_them(client: httpx.Client) -> None:
    assert "'HYPERSPACE', 'F99'" in refused(
        client, OPENAI, {"type": "keypress", "keys": ["CTRL", "HYPERSPACE", "F99"]}
    )
    assert "unknown action type 'teleport'" in refused(client, OPENAI, {"type": "teleport"})
    assert "x: required" in refused(client, OPENAI, {"type": "click", "button": "left"})
    assert "path" in refused(client, OPENAI, {"type": "drag", "path": [{"x": 1, "y": 2}]})
    assert "button" in refused(client, OPENAI, {"type": "click", "button": "middle", "x": 1, "y": 1})
    assert "outside the 1024x768" in refused(
        client, OPENAI, {"type": "click", "button": "left", "x": 1024, "y": 300}, headers=SPACE
    )
    assert "letterbox" in refused(client, OPENAI, {"type": "move", "x": 10, "y": 700}, headers=SPACE)


def test_drag_with_a_bad_later_point_does_nothing(client: httpx.Client, logger: EventLogger) -> None:
    """Every point of the path is checked before any input: no press at path[0], then a 400."""
    mx, my = to_model(*logger.area_center)
    path = [{"x": mx, "y": my}, {"x": 500, "y": 10}]  # y=10 is in the 1024x768 space's letterbox
    message = refused(client, OPENAI, {"type": "drag", "path": path}, headers=SPACE)
    assert message.startswith("path[1]:") and "letterbox" in message
    assert buttons(logger.collect()) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [(OPENAI, {"type": "wait"}), ("/compat/anthropic/computer", {"action": "wait", "duration": 2})],
)
def test_a_wait_leaves_the_input_to_others(
    client: httpx.Client, desktop: DevDesktop, path: str, body: dict[str, object]
) -> None:
    """A vendor's wait is a pause, not input: another client's input runs meanwhile."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(post, client, path, body)
        time.sleep(0.3)  # the wait has begun
        client.post("/desktop/move", json={"x": 123, "y": 45}).raise_for_status()
        assert not waiting.done(), "the move waited for the vendor's wait to end"
        assert pointer(desktop) == (123, 45)
        waiting.result()
