"""Clicks, scrolls and drags with modifiers held deliver them on every press and release.

Under a window manager that grabs the buttons of client windows (xfwm4, the dev desktop's),
the pointer is frozen at each press until the WM replays it; a modifier released before that
used to overtake the click, which then arrived plain. Observed by a core-event X client (the
``state`` of each event as delivered) and by the GTK logger (XI2).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from Xlib import X

from agent.session.devdesktop import DevDesktop
from tests.core_events import CoreEventLogger
from tests.observers import EventLogger
from tests.x11.compat_helpers import ANTHROPIC, OPENAI, post

CTRL, SHIFT = X.ControlMask, X.ShiftMask


@pytest.fixture()
def core(desktop: DevDesktop) -> Iterator[CoreEventLogger]:
    app = CoreEventLogger(desktop.display)
    yield app
    app.close()


def states(events: list[Any]) -> list[int]:
    return [event.state & (CTRL | SHIFT) for event in events]


def test_click_with_modifiers_arrives_with_them_every_time(
    client: httpx.Client, core: CoreEventLogger
) -> None:
    x, y = core.center()
    for _ in range(4):
        client.post("/desktop/click", json={"x": x, "y": y, "modifiers": ["ctrl"]}).raise_for_status()
        assert states(core.take("press", 1)) == [CTRL]
        assert states(core.take("release", 1)) == [CTRL]
    client.post("/desktop/click", json={"x": x, "y": y}).raise_for_status()
    assert states(core.take("press", 1)) == [0]


@pytest.mark.parametrize(("route", "count"), [("/desktop/double-click", 2), ("/desktop/triple-click", 3)])
def test_multi_click_with_modifiers(
    client: httpx.Client, core: CoreEventLogger, route: str, count: int
) -> None:
    x, y = core.center()
    client.post(route, json={"x": x, "y": y, "modifiers": ["shift"]}).raise_for_status()
    assert states(core.take("press", count)) == [SHIFT] * count
    assert states(core.take("release", count)) == [SHIFT] * count


def test_gtk_sees_shift_on_both_presses_of_a_double_click(client: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    client.post("/desktop/double-click", json={"x": x, "y": y, "modifiers": ["shift"]}).raise_for_status()
    presses = [e for e in logger.collect() if e["event"] == "button" and e["kind"] in ("press", "double")]
    assert len(presses) == 3 and all(e["shift"] for e in presses), presses


@pytest.mark.parametrize(
    ("body", "count", "mask"),
    [
        ({"action": "left_click", "text": "ctrl"}, 1, CTRL),
        ({"action": "double_click", "text": "shift"}, 2, SHIFT),
        ({"action": "triple_click", "text": "ctrl+shift"}, 3, CTRL | SHIFT),
        ({"action": "right_click", "key": "shift"}, 1, SHIFT),
    ],
)
def test_anthropic_clicks_hold_text_modifiers(
    client: httpx.Client, core: CoreEventLogger, body: dict[str, Any], count: int, mask: int
) -> None:
    x, y = core.center()
    post(client, ANTHROPIC, {**body, "coordinate": [x, y]})
    assert states(core.take("press", count)) == [mask] * count
    assert states(core.take("release", count)) == [mask] * count


@pytest.mark.parametrize(
    ("body", "count"),
    [
        ({"type": "click", "button": "left", "keys": ["SHIFT"]}, 1),
        ({"type": "double_click", "keys": ["SHIFT"]}, 2),
    ],
)
def test_openai_clicks_hold_keys(
    client: httpx.Client, core: CoreEventLogger, body: dict[str, Any], count: int
) -> None:
    x, y = core.center()
    post(client, OPENAI, {**body, "x": x, "y": y})
    assert states(core.take("press", count)) == [SHIFT] * count
    assert states(core.take("release", count)) == [SHIFT] * count


def test_scroll_with_modifiers(client: httpx.Client, core: CoreEventLogger) -> None:
    x, y = core.center()
    body = {
        "action": "scroll",
        "coordinate": [x, y],
        "scroll_direction": "down",
        "scroll_amount": 2,
        "text": "ctrl",
    }
    post(client, ANTHROPIC, body)
    assert [(e.detail, e.state & CTRL) for e in core.take("press", 2)] == [(5, CTRL)] * 2
    post(
        client, OPENAI, {"type": "scroll", "x": x, "y": y, "scroll_x": 0, "scroll_y": -100, "keys": ["SHIFT"]}
    )
    assert [(e.detail, e.state & SHIFT) for e in core.take("press", 1)] == [(4, SHIFT)]


def test_drag_with_keys(client: httpx.Client, core: CoreEventLogger) -> None:
    x, y = core.center()
    path = [{"x": x - 40, "y": y}, {"x": x, "y": y + 20}, {"x": x + 40, "y": y}]
    post(client, OPENAI, {"type": "drag", "path": path, "keys": ["SHIFT"]})
    assert states(core.take("press", 1)) == [SHIFT]
    assert states(core.take("release", 1)) == [SHIFT]
