"""The peers' vocabularies (seeds 000, 001, 002, 003) against a real agent on Xvfb.

Each request is sent as a peer's client would send it; the effect is observed independently
(the GTK event logger, xdotool, xwininfo, files written by the commands); and every request the
server accepted, and its answer, are checked against the OpenAPI document the agent serves
(jsonschema_rs), so the document describes what the server accepts, aliases included.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import run_observer
from tests.observers import EventLogger
from tests.waiting import wait_until


class Peer:
    """Sends requests like a peer's client, and checks each accepted one against the served document."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        document = client.get("/openapi.json").json()
        self.components = document["components"]
        self.paths: dict[str, Any] = document["paths"]

    def schemas(self, path: str) -> tuple[Any, Any]:
        """Validators of the POST route's JSON body and of its 200 JSON answer."""
        for template, item in self.paths.items():
            if re.fullmatch(re.sub(r"{\w+}", "[^/]+", template), path) and "post" in item:
                operation = item["post"]
                request = operation["requestBody"]["content"]["application/json"]["schema"]
                answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
                return (
                    jsonschema_rs.Draft202012Validator({**request, "components": self.components}),
                    jsonschema_rs.Draft202012Validator({**answer, "components": self.components}),
                )
        raise AssertionError(f"the served document has no POST {path}")

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.post(path, json=body)
        assert answer.status_code == 200, (path, body, answer.text)
        request_schema, answer_schema = self.schemas(path)
        errors = [error.message for error in request_schema.iter_errors(body)]
        assert not errors, f"POST {path} {body}: accepted, but the served document refuses it: {errors}"
        result: dict[str, Any] = answer.json()
        errors = [error.message for error in answer_schema.iter_errors(result)]
        assert not errors, f"POST {path} {body}: the answer does not match the served document: {errors}"
        return result


@pytest.fixture()
def peer(client: httpx.Client) -> Peer:
    return Peer(client)


def buttons(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(e["kind"], e["button"]) for e in events if e["event"] == "button"]


def scrolls(logger: EventLogger) -> list[str]:
    return [e["direction"] for e in logger.collect() if e["event"] == "scroll"]


def pointer(desktop: DevDesktop) -> tuple[int, int]:
    shell = dict(
        line.split("=", 1) for line in run_observer(desktop, "xdotool", "getmouselocation", "--shell").split()
    )
    return int(shell["X"]), int(shell["Y"])


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def entry_point(logger: EventLogger) -> tuple[int, int]:
    return logger.ready["area_x"] + 50, logger.ready["area_y"] - 15


# Seed 000: POST /computer-action with its nine action types, its fields and its units.


def test_seed_000_pointer_actions(peer: Peer, logger: EventLogger, desktop: DevDesktop) -> None:
    x, y = logger.area_center
    assert peer.post("/computer-action", {"type": "move_mouse", "x": x - 10, "y": y - 20}) == {
        "output": None,
        "error": None,
        "base64_image": None,
    }
    assert pointer(desktop) == (x - 10, y - 20)
    answer = peer.post("/computer-action", {"type": "get_cursor_position"})
    assert json.loads(answer["output"]) == {"x": x - 10, "y": y - 20}
    logger.drain()

    peer.post(
        "/computer-action", {"type": "click_mouse", "x": x, "y": y, "button": "left", "num_of_clicks": 2}
    )
    assert buttons(logger.collect()) == [
        ("press", 1),
        ("release", 1),
        ("press", 1),
        ("double", 1),
        ("release", 1),
    ]
    peer.post(
        "/computer-action", {"type": "click_mouse", "x": x, "y": y, "button": "right", "click_type": "down"}
    )
    peer.post("/computer-action", {"type": "click_mouse", "button": "right", "click_type": "up"})
    assert buttons(logger.collect()) == [("press", 3), ("release", 3)]

    start, end = {"x": x - 150, "y": y - 40}, {"x": x + 150, "y": y + 40}
    peer.post("/computer-action", {"type": "drag_mouse", "start": start, "end": end})
    events = logger.collect()
    pressed = [e for e in events if e["event"] == "button"]
    assert [(e["kind"], e["x"], e["y"]) for e in pressed] == [
        ("press", start["x"], start["y"]),
        ("release", end["x"], end["y"]),
    ]
    assert len([e for e in events if e["event"] == "drag-motion"]) >= 5


def test_seed_000_scroll_amount_is_pixels(peer: Peer, logger: EventLogger, client: httpx.Client) -> None:
    x, y = logger.area_center
    client.post("/desktop/move", json={"x": x, "y": y}).raise_for_status()
    logger.drain()
    # 300 px is three notches (100 px each); 40 px still turns the wheel once.
    seen = []
    for body in ({"direction": "down", "amount": 300}, {"direction": "up", "amount": 40}):
        peer.post("/computer-action", {"type": "scroll", **body})
        seen += scrolls(logger)  # one call at a time: GTK may coalesce wheel events read together
    assert seen == ["down", "down", "down", "up"]
    # The same field on our own scroll route stays notches (API.md).
    peer.post("/desktop/scroll", {"x": x, "y": y, "direction": "down", "amount": 2})
    assert scrolls(logger) == ["down", "down"]


def test_seed_000_keys_and_text(peer: Peer, logger: EventLogger) -> None:
    x, y = entry_point(logger)
    peer.post("/computer-action", {"type": "click_mouse", "x": x, "y": y})
    peer.post("/computer-action", {"type": "press_keys", "keys": ["ctrl", "a"]})
    peer.post("/computer-action", {"type": "press_keys", "keys": "BackSpace"})
    peer.post("/computer-action", {"type": "type", "text": "Hello, World!"})
    peer.post("/computer-action", {"type": "wait", "ms": 50})
    peer.post("/computer-action", {"type": "press_keys", "keys": ["Return"], "key_action_type": "press"})
    assert logger.next("entry")["text"] == "Hello, World!"

    # key_action_type down/up hold a key across another action.
    area_x, area_y = logger.area_center
    logger.drain()
    peer.post("/computer-action", {"type": "press_keys", "keys": ["shift"], "key_action_type": "down"})
    peer.post("/computer-action", {"type": "click_mouse", "x": area_x, "y": area_y})
    peer.post("/computer-action", {"type": "press_keys", "keys": ["shift"], "key_action_type": "up"})
    press = next(e for e in logger.collect() if e["event"] == "button" and e["kind"] == "press")
    assert press["shift"] is True
    peer.post("/computer-action", {"type": "click_mouse", "x": area_x, "y": area_y})
    press = next(e for e in logger.collect() if e["event"] == "button" and e["kind"] == "press")
    assert press["shift"] is False


def test_seed_000_screenshot_answers_base64_image(peer: Peer) -> None:
    answer = peer.post("/computer-action", {"type": "screenshot"})
    assert answer["output"] is None
    assert png_size(base64.b64decode(answer["base64_image"])) == (1280, 720)


def test_seed_000_types_are_actions_too(peer: Peer, logger: EventLogger, desktop: DevDesktop) -> None:
    x, y = logger.area_center
    assert peer.post("/actions", {"type": "move_mouse", "x": x, "y": y + 5}) == {
        "success": True,
        "result": {},
    }
    assert pointer(desktop) == (x, y + 5)
    logger.drain()
    answer = peer.post(
        "/batch",
        {
            "actions": [
                {"type": "click_mouse", "x": x, "y": y, "button": "middle"},
                {"type": "scroll_pixels", "x": x, "y": y, "dy": 200},
                {"type": "get_cursor_position"},
            ]
        },
    )
    assert [step["success"] for step in answer["results"]] == [True, True, True]
    assert answer["results"][2]["result"] == {"x": x, "y": y}
    events = logger.collect()
    assert buttons(events) == [("press", 2), ("release", 2)]
    assert [e["direction"] for e in events if e["event"] == "scroll"] == ["down", "down"]


def test_seed_000_bash_action(peer: Peer, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)  # commands run as the desktop user
    # The seed's own example, verbatim.
    assert peer.post("/bash-action", {"command": "echo 'Hello, World!'"}) == {
        "output": "Hello, World!\n",
        "error": None,
        "base64_image": None,
    }
    target = tmp_path / "from-bash-action.txt"
    answer = peer.post("/bash-action", {"command": f"echo written > {target}; echo oops >&2"})
    assert answer["error"] == "oops\n"
    assert target.read_text() == "written\n"


# Seed 001: POST /bash with `command` (our `script`).


def test_seed_001_bash_takes_command(peer: Peer, client: httpx.Client, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    target = tmp_path / "from-bash.txt"
    answer = peer.post("/bash", {"command": f"echo 'Hello, World!' | tee {target}\necho second >> {target}"})
    assert answer["stdout"] == "Hello, World!\n" and answer["exit_code"] == 0
    assert target.read_text() == "Hello, World!\nsecond\n"
    assert peer.post("/bash", {"script": "echo ours"})["stdout"] == "ours\n"
    both = client.post("/bash", json={"script": "true", "command": "true"})
    assert both.status_code == 400 and "not both" in both.json()["error"]["message"]


# Seed 002: POST screenshot with a JSON body, /exec/sync, its action types with dx/dy in pixels.


def test_seed_002_post_screenshot_with_a_json_body(peer: Peer, client: httpx.Client) -> None:
    answer = client.post("/desktop/screenshot", json={"scale_factor": 0.5})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert png_size(answer.content) == (640, 360)
    image = peer.post("/desktop/screenshot", {"base64": True, "scale_factor": 0.5})
    assert (image["width"], image["height"]) == (640, 360)
    assert png_size(base64.b64decode(image["image"])) == (640, 360)
    empty = peer.client.post("/desktop/screenshot", json={})
    assert empty.status_code == 200 and png_size(empty.content) == (1280, 720)


def test_seed_002_exec_sync(peer: Peer, tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    target = tmp_path / "from-exec-sync.txt"
    answer = peer.post("/exec/sync", {"command": f"echo synced > {target}; echo out", "timeout_seconds": 10})
    assert answer["stdout"] == "out\n" and answer["exit_code"] == 0
    assert target.read_text() == "synced\n"


def test_seed_002_scroll_dx_dy_are_pixels(peer: Peer, logger: EventLogger) -> None:
    x, y = logger.area_center
    logger.drain()
    answer = peer.post(
        "/execute", {"type": "scroll", "x": x, "y": y, "dx": 0, "dy": 120, "request_id": "r-1"}
    )
    assert answer["status"] == "success" and answer["request_id"] == "r-1" and answer["result"] == {}
    seen = scrolls(logger)  # one call at a time: GTK may coalesce wheel events read together
    peer.post("/execute", {"type": "scroll", "x": x, "y": y, "dy": -200})
    seen += scrolls(logger)
    peer.post("/execute", {"type": "scroll", "x": x, "y": y, "dx": 100})
    assert seen + scrolls(logger) == ["down", "up", "up", "right"]
    # Our own dx/dy stay notches (API.md), on the route and on /actions.
    peer.post("/desktop/scroll", {"x": x, "y": y, "dy": 2})
    seen = scrolls(logger)
    peer.post("/actions", {"type": "scroll", "x": x, "y": y, "dx": -1})
    assert seen + scrolls(logger) == ["down", "down", "left"]


def test_seed_002_action_types(peer: Peer, logger: EventLogger, desktop: DevDesktop) -> None:
    x, y = logger.area_center
    logger.drain()
    peer.post("/execute", {"type": "click", "x": x, "y": y, "button": "left"})
    assert buttons(logger.collect()) == [("press", 1), ("release", 1)]
    peer.post("/execute", {"type": "right_click", "x": x, "y": y})
    assert buttons(logger.collect()) == [("press", 3), ("release", 3)]
    time.sleep(0.5)  # pacing: past the double-click time
    peer.post("/actions", {"type": "left_click", "x": x, "y": y})
    assert buttons(logger.collect()) == [("press", 1), ("release", 1)]
    peer.post("/execute", {"type": "drag", "x1": x - 100, "y1": y, "x2": x + 100, "y2": y + 10})
    peer.post("/desktop/drag", {"x1": x - 50, "y1": y, "x2": x + 50, "y2": y})
    pressed = [(e["kind"], e["x"], e["y"]) for e in logger.collect() if e["event"] == "button"]
    assert pressed == [
        ("press", x - 100, y),
        ("release", x + 100, y + 10),
        ("press", x - 50, y),
        ("release", x + 50, y),
    ]
    peer.post("/actions", {"type": "mouse_move", "x": x + 7, "y": y + 8})
    assert pointer(desktop) == (x + 7, y + 8)
    assert peer.post("/actions", {"type": "cursor", "request_id": "r-2"})["result"] == {
        "x": x + 7,
        "y": y + 8,
    }

    ex, ey = entry_point(logger)
    peer.post("/execute", {"type": "click", "x": ex, "y": ey})
    peer.post("/execute", {"type": "keypress", "keys": ["ctrl", "a"]})
    peer.post("/actions", {"type": "key_press", "key": "BackSpace"})
    peer.post("/execute", {"type": "type", "text": "seed two"})
    peer.post("/execute", {"type": "wait", "ms": 50})
    peer.post("/actions", {"type": "keypress", "keys": ["Return"]})
    assert logger.next("entry")["text"] == "seed two"
    shot = peer.post("/execute", {"type": "screenshot", "scale_factor": 0.25})
    assert (shot["result"]["width"], shot["result"]["height"]) == (320, 180)


# Seed 003: window bodies carry only what the path does not.


def test_seed_003_window_resize_body(peer: Peer, desktop: DevDesktop) -> None:
    title = "peer-resize"
    xterm = subprocess.Popen(["xterm", "-title", title, "-geometry", "40x10+50+50"], env=desktop.env)
    try:
        window = int(run_observer(desktop, "xdotool", "search", "--sync", "--name", title).split()[0])
        peer.post(f"/desktop/window/{window:#x}/resize", {"width": 600, "height": 400})

        def width() -> int:
            info = run_observer(desktop, "xwininfo", "-id", str(window))
            return int(re.search(r"Width: (\d+)", info).group(1))  # type: ignore[union-attr]

        # xterm keeps to whole character cells
        wait_until(lambda: abs(width() - 600) < 20, what="xterm resized to about 600 px", interval=0.1)
        peer.post(f"/desktop/window/{window:#x}/move", {"x": 100, "y": 120})
    finally:
        xterm.terminate()
        xterm.wait(timeout=5)


def test_every_alias_the_server_accepts_is_in_the_document(peer: Peer, logger: EventLogger) -> None:
    """Accepted before this change too, but the document refused them (hidden aliases)."""
    x, y = logger.area_center
    logger.drain()
    peer.post("/actions", {"type": "mouse_move", "x": x, "y": y})
    peer.post("/actions", {"type": "left_click", "x": x, "y": y})
    peer.post("/desktop/drag", {"x1": x - 40, "y1": y, "x2": x + 40, "y2": y})
    pressed = [(e["kind"], e["x"]) for e in logger.collect() if e["event"] == "button"]
    assert pressed == [("press", x), ("release", x), ("press", x - 40), ("release", x + 40)]
    assert peer.post("/actions", {"type": "get_cursor_position"})["result"] == {"x": x + 40, "y": y}
    assert peer.post("/actions", {"type": "cursor"})["result"] == {"x": x + 40, "y": y}
    ex, ey = entry_point(logger)
    peer.post("/actions", {"type": "left_click", "x": ex, "y": ey})
    peer.post("/actions", {"type": "keypress", "keys": ["ctrl", "a"]})
    peer.post("/actions", {"type": "key_press", "key": "BackSpace"})
    peer.post("/actions", {"type": "type", "text": "aliases"})
    peer.post("/actions", {"type": "keypress", "keys": ["Return"]})
    assert logger.next("entry")["text"] == "aliases"


def test_the_peers_endpoints_follow_the_leniency_policy(peer: Peer, desktop: DevDesktop) -> None:
    """Seed 002 types x, y, dx, dy and ms as numbers: its clients send floats. The peers'
    endpoints round coordinates, take integral numbers and any-case enums like our own routes
    (they were 400s while the document accepted them)."""
    peer.post("/computer-action", {"type": "move_mouse", "x": 100.5, "y": 120.2})
    assert pointer(desktop) == (101, 120)
    peer.post(
        "/computer-action",
        {"type": "drag_mouse", "start": {"x": 300, "y": 300}, "end": {"x": 320.4, "y": 330.0, "z": None}},
    )
    assert pointer(desktop) == (320, 330)
    peer.post("/computer-action", {"type": "press_keys", "keys": ["shift"], "key_action_type": "PRESS"})
    peer.post("/computer-action", {"type": "wait", "ms": 5.0})
    peer.post("/execute", {"type": "click", "x": 140.5, "y": 150.0, "button": "LEFT"})
    assert pointer(desktop) == (141, 150)
    peer.post("/execute", {"type": "scroll", "x": 200, "y": 210, "dy": 100.4})
    peer.post("/execute", {"type": "wait", "ms": 2.0})
