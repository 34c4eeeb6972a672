"""Pointer and keyboard input, observed by a real GTK app, xterm, xdotool and XRecord."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import run_observer
from tests.observers import EventLogger, KeyRecorder
from tests.waiting import wait_until

UNICODE_SAMPLE = "héllo wörld – 日本語 😀 ça ñß€"


def buttons(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(e["kind"], e["button"]) for e in events if e["event"] == "button"]


def test_click_reaches_the_app_at_the_point(client: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    assert client.post("/desktop/click", json={"x": x, "y": y}).json() == {"success": True}
    events = [e for e in logger.collect() if e["event"] == "button"]
    assert [(e["kind"], e["button"]) for e in events] == [("press", 1), ("release", 1)]
    assert (events[0]["x"], events[0]["y"]) == (x, y)


@pytest.mark.parametrize(
    ("route", "body", "expected"),
    [
        ("/desktop/right-click", {}, [("press", 3), ("release", 3)]),
        ("/desktop/click", {"button": "middle"}, [("press", 2), ("release", 2)]),
        (
            "/desktop/double-click",
            {},
            [("press", 1), ("release", 1), ("press", 1), ("double", 1), ("release", 1)],
        ),
        (
            "/desktop/triple-click",
            {},
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
def test_click_kinds(
    client: httpx.Client, logger: EventLogger, route: str, body: dict[str, Any], expected: list[Any]
) -> None:
    x, y = logger.area_center
    assert client.post(route, json={"x": x, "y": y, **body}).status_code == 200
    assert buttons(logger.collect()) == expected


def test_click_with_modifiers_holds_them(client: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    client.post("/desktop/click", json={"x": x, "y": y, "modifiers": ["ctrl", "shift"]}).raise_for_status()
    press = next(e for e in logger.collect() if e["event"] == "button" and e["kind"] == "press")
    assert press["ctrl"] and press["shift"]
    client.post("/desktop/click", json={"x": x, "y": y}).raise_for_status()
    press = next(e for e in logger.collect() if e["event"] == "button" and e["kind"] == "press")
    assert not press["ctrl"] and not press["shift"]


def test_scroll_directions_and_amount(client: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    # One at a time, each handled before the next: GTK may coalesce wheel events read together.
    directions = []
    for body in (
        {"direction": "down", "amount": 2},
        {"direction": "up"},
        {"dx": -1, "dy": 0},
        {"dx": 2},
    ):
        client.post("/desktop/scroll", json={"x": x, "y": y, **body}).raise_for_status()
        directions += [e["direction"] for e in logger.collect() if e["event"] == "scroll"]
    assert directions == ["down", "down", "up", "up", "up", "left", "right", "right"]


def test_drag_moves_through_intermediate_points(client: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    body = {"start_x": x - 200, "start_y": y - 50, "end_x": x + 200, "end_y": y + 50}
    client.post("/desktop/drag", json=body).raise_for_status()
    events = logger.collect()
    kinds = [e["event"] if e["event"] != "button" else e["kind"] for e in events]
    assert kinds[0] == "press" and kinds[-1] == "release"
    motions = [e for e in events if e["event"] == "drag-motion"]
    assert len(motions) >= 5
    assert (events[0]["x"], events[0]["y"]) == (x - 200, y - 50)
    assert (events[-1]["x"], events[-1]["y"]) == (x + 200, y + 50)
    xs = [m["x"] for m in motions]
    assert xs == sorted(xs) and len(set(xs)) >= 5


def test_mouse_down_and_up(client: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    client.post("/desktop/mouse-down", json={"x": x, "y": y, "button": "left"}).raise_for_status()
    client.post("/desktop/mouse-up", json={"x": x + 30, "y": y, "button": "left"}).raise_for_status()
    events = [e for e in logger.collect() if e["event"] == "button"]
    assert [(e["kind"], e["x"]) for e in events] == [("press", x), ("release", x + 30)]


def test_move_and_cursor_agree_with_xdotool(client: httpx.Client, desktop: DevDesktop) -> None:
    client.post("/desktop/move", json={"x": 321, "y": 123}).raise_for_status()
    location = run_observer(desktop, "xdotool", "getmouselocation", "--shell")
    assert "X=321" in location and "Y=123" in location
    assert client.get("/desktop/cursor").json() == {"x": 321, "y": 123}
    run_observer(desktop, "xdotool", "mousemove", "77", "88")
    assert client.get("/desktop/cursor").json() == {"x": 77, "y": 88}


def test_screen_size_matches_xdpyinfo(client: httpx.Client, desktop: DevDesktop) -> None:
    info = run_observer(desktop, "xdpyinfo")
    assert "dimensions:    1280x720 pixels" in info
    assert client.get("/desktop/screen-size").json() == {"width": 1280, "height": 720}


def _type_into_entry(client: httpx.Client, logger: EventLogger, text: str) -> str:
    entry_point = (logger.ready["area_x"] + 50, logger.ready["area_y"] - 15)
    client.post("/desktop/click", json={"x": entry_point[0], "y": entry_point[1]}).raise_for_status()
    client.post("/desktop/key", json={"key": "ctrl+a BackSpace"}).raise_for_status()
    client.post("/desktop/type", json={"text": text}).raise_for_status()
    client.post("/desktop/key", json={"key": "Return"}).raise_for_status()
    return str(logger.next("entry")["text"])


@pytest.mark.parametrize(
    "text", [UNICODE_SAMPLE, "The quick brown fox; 0123456789 !@#$%^&*()_+-=[]{}|\\:\"'<>,.?/~`"]
)
def test_type_into_gtk_entry_is_exact(client: httpx.Client, logger: EventLogger, text: str) -> None:
    assert _type_into_entry(client, logger, text) == text


class XtermCat:
    """xterm running ``cat > file``: what we type lands in the file byte for byte."""

    def __init__(self, desktop: DevDesktop, client: httpx.Client, path: Path) -> None:
        title = f"cat-{path.name}"
        self.path = path
        self.process = subprocess.Popen(
            [
                "xterm",
                "-u8",
                "-title",
                title,
                "-geometry",
                "80x10+100+100",
                "-e",
                "sh",
                "-c",
                f"cat > {path}",
            ],
            env=dict(desktop.env, LANG="C.UTF-8", LC_ALL="C.UTF-8"),
        )
        window = run_observer(desktop, "xdotool", "search", "--sync", "--name", title).split()[0]
        geometry = run_observer(desktop, "xwininfo", "-id", window)
        fields = dict(line.strip().split(":", 1) for line in geometry.splitlines() if ":" in line)
        x = int(fields["Absolute upper-left X"]) + int(fields["Width"]) // 2
        y = int(fields["Absolute upper-left Y"]) + int(fields["Height"]) // 2
        client.post("/desktop/click", json={"x": x, "y": y}).raise_for_status()
        wait_until(
            lambda: run_observer(desktop, "xdotool", "getwindowfocus").strip() == str(int(window)),
            what="the xterm to take the focus",
        )

    def finish(self, client: httpx.Client) -> bytes:
        client.post("/desktop/key", json={"key": "ctrl+d"}).raise_for_status()
        self.process.wait(timeout=10)
        return self.path.read_bytes()


def test_type_into_xterm_is_byte_exact(client: httpx.Client, desktop: DevDesktop, tmp_path: Path) -> None:
    text = UNICODE_SAMPLE + "\nsecond line\twith a tab\n" + "x" * 300 + "\n"
    xterm = XtermCat(desktop, client, tmp_path / "typed.txt")
    client.post("/desktop/type", json={"text": text}).raise_for_status()
    assert xterm.finish(client) == text.encode()


def test_type_exact_on_a_german_layout(
    client: httpx.Client, desktop: DevDesktop, logger: EventLogger, tmp_path: Path
) -> None:
    run_observer(desktop, "setxkbmap", "de")
    try:
        time.sleep(0.3)  # pacing: the apps reload their keymap on MappingNotify, which shows nowhere
        text = UNICODE_SAMPLE + " yz @{[]}\\~|<> äöüÄÖÜ"
        assert _type_into_entry(client, logger, text) == text
        xterm = XtermCat(desktop, client, tmp_path / "typed-de.txt")
        client.post("/desktop/type", json={"text": text + "\n"}).raise_for_status()
        assert xterm.finish(client) == (text + "\n").encode()
    finally:
        run_observer(desktop, "setxkbmap", "us")
        time.sleep(0.3)  # pacing: as above, the apps' keymap reload


def test_type_more_distinct_characters_than_spare_keycodes(
    client: httpx.Client, desktop: DevDesktop, tmp_path: Path
) -> None:
    text = "".join(chr(code) for code in range(0x4E00, 0x4E00 + 400)) + "\n"
    xterm = XtermCat(desktop, client, tmp_path / "cjk.txt")
    client.post("/desktop/type", json={"text": text}).raise_for_status()
    assert xterm.finish(client).decode() == text


def test_type_with_delay(client: httpx.Client, logger: EventLogger) -> None:
    entry_point = (logger.ready["area_x"] + 50, logger.ready["area_y"] - 15)
    client.post("/desktop/click", json={"x": entry_point[0], "y": entry_point[1]}).raise_for_status()
    started = time.monotonic()
    client.post("/desktop/type", json={"text": "abc", "delay_ms": 100}).raise_for_status()
    assert time.monotonic() - started >= 0.2
    client.post("/desktop/key", json={"key": "Return"}).raise_for_status()
    assert logger.next("entry")["text"] == "abc"


def test_key_down_holds_until_key_up(client: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    client.post("/desktop/key-down", json={"key": "ctrl"}).raise_for_status()
    client.post("/desktop/click", json={"x": x, "y": y}).raise_for_status()
    client.post("/desktop/key-up", json={"key": "ctrl"}).raise_for_status()
    client.post("/desktop/click", json={"x": x, "y": y}).raise_for_status()
    presses = [e for e in logger.collect() if e["event"] == "button" and e["kind"] == "press"]
    assert [p["ctrl"] for p in presses] == [True, False]


def test_failed_batch_releases_held_keys(client: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    answer = client.post(
        "/batch",
        json={"actions": [{"type": "key_down", "key": "shift"}, {"type": "click", "x": 99999, "y": 1}]},
    ).json()
    assert answer["success"] is False and answer["results"][1]["error"]["code"] == "INVALID_ARGUMENT"
    client.post("/desktop/click", json={"x": x, "y": y}).raise_for_status()
    press = next(e for e in logger.collect() if e["event"] == "button" and e["kind"] == "press")
    assert press["shift"] is False


@pytest.mark.parametrize("numlock_on", [False, True], ids=["numlock-off", "numlock-on"])
def test_keypad_keys_arrive_as_named_whatever_numlock(
    client: httpx.Client, logger: EventLogger, desktop: DevDesktop, numlock_on: bool
) -> None:
    """KP_1 and KP_End share a key; NumLock (not Shift) picks KP_1. Each arrives as named, and the
    NumLock state the user had is left as it was."""
    if numlock_on:
        run_observer(desktop, "xdotool", "key", "Num_Lock")
        logger.collect()
    try:
        before = numlock_mask_state(desktop)
        assert before == numlock_on
        for spec in ("KP_1", "KP_End", "KP_0", "KP_Insert", "KP_5", "KP_Decimal", "KP_Add"):
            client.post("/desktop/key", json={"key": spec}).raise_for_status()
            presses = [e for e in logger.collect() if e["event"] == "key"]
            assert presses and presses[0]["keyval"] == spec, (spec, presses)
        assert numlock_mask_state(desktop) == numlock_on
    finally:
        if numlock_on:
            run_observer(desktop, "xdotool", "key", "Num_Lock")


def numlock_mask_state(desktop: DevDesktop) -> bool:
    """Whether NumLock is on, as xset reads it from the server."""
    return re.search(r"Num Lock:\s+on", run_observer(desktop, "xset", "q")) is not None


# Our spec -> the spec xdotool is given (the same, except for aliases xdotool lacks).
# Deliberate differences, not listed: xdotool reaches KP_1 by pressing Num_Lock (which leaves
# the NumLock state toggled) where we lock NumLock for the key and put it back, and it presses
# Shift_L before Shift_R.
KEY_SPECS: dict[str, str] = {
    spec: spec
    for spec in [
        "a",
        "A",
        "z",
        "1",
        "0",
        "ctrl+c",
        "ctrl+shift+t",
        "ctrl+alt+t",
        "shift+Tab",
        "Return",
        "KP_Enter",
        "F1",
        "F5",
        "F12",
        "shift+F10",
        "Page_Up",
        "Page_Down",
        "Home",
        "End",
        "ctrl+Home",
        "Escape",
        "BackSpace",
        "Delete",
        "Insert",
        "Tab",
        "space",
        "Up",
        "Down",
        "Left",
        "Right",
        "at",
        "exclam",
        "plus",
        "ctrl+plus",
        "minus",
        "underscore",
        "question",
        "colon",
        "percent",
        "asciitilde",
        "dollar",
        "braceleft",
        "bar",
        "KP_Add",
        "KP_Divide",
        "Menu",
        "Print",
        "super",
        "ctrl+a",
        "alt+x",
        "ctrl+shift+A",
        "semicolon",
        "apostrophe",
    ]
}
KEY_SPECS.update(
    {
        "Enter": "Return",
        "ESC": "Escape",
        "CTRL+c": "ctrl+c",
        "PageUp": "Page_Up",
        "ArrowLeft": "Left",
        "Backspace": "BackSpace",
        "cmd+a": "super+a",
        "f5": "F5",
    }
)


def test_key_sends_the_same_events_as_xdotool(client: httpx.Client, desktop: DevDesktop) -> None:
    recorder = KeyRecorder(desktop.display)
    try:
        mismatches = {}
        for ours, theirs in KEY_SPECS.items():
            run_observer(desktop, "xdotool", "key", "--delay", "0", theirs)
            expected = recorder.take_sequence()
            client.post("/desktop/key", json={"key": ours}).raise_for_status()
            got = recorder.take_sequence()
            if got != expected:
                mismatches[ours] = {"ours": got, "xdotool": expected}
        assert len(KEY_SPECS) >= 40
        assert not mismatches, "\n".join(f"{k}: {v}" for k, v in mismatches.items())
    finally:
        recorder.close()
