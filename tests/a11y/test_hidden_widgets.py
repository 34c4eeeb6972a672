"""Widgets that exist but are not showing (tests/apps/hidden_widgets.py): ``visible_only``
leaves them out, and an element click on one is refused, with nothing clicked."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.a11y.test_accessibility import find, pyatspi_showing, walk
from tests.conftest import stop_process
from tests.observers import SYSTEM_PYTHON
from tests.waiting import wait_until

APP = Path(__file__).resolve().parents[1] / "apps" / "hidden_widgets.py"
NOT_SHOWING = {"Page two button", "Hidden button"}


class HiddenWidgets:
    """The app, its JSON lines read on a thread."""

    def __init__(self, desktop: DevDesktop) -> None:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(APP)], env=desktop.env, stdout=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.lines.get(timeout=15)["event"] == "ready"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def clicked(self) -> list[str]:
        """The names of the buttons clicked so far."""
        names = []
        while not self.lines.empty():
            entry = self.lines.get()
            if entry["event"] == "clicked":
                names.append(entry["name"])
        return names


@pytest.fixture()
def app(desktop: DevDesktop, client: httpx.Client) -> Iterator[HiddenWidgets]:
    running = HiddenWidgets(desktop)
    assert find(client, role="push button", name="Shown button", app=str(running.process.pid))
    yield running
    stop_process(running.process)
    if running.process.stdout is not None:
        running.process.stdout.close()


def push_buttons(client: httpx.Client, pid: int, **params: str) -> dict[str, dict[str, Any]]:
    body = client.get("/desktop/accessibility-tree", params={"app": str(pid), **params}).json()
    assert body["truncated"] is False and body["unresponsive"] == [], body
    return {node["name"]: node for node in walk(body["tree"]) if node["role"] == "push button"}


def test_visible_only_leaves_out_what_is_not_showing(
    client: httpx.Client, desktop: DevDesktop, app: HiddenWidgets
) -> None:
    pid = app.process.pid
    # pyatspi, in its own process, agrees which buttons are showing.
    showing = {name for role, name, _ in pyatspi_showing(desktop, pid) if role == "push button"}
    assert "Shown button" in showing and not showing & NOT_SHOWING, showing
    everything = push_buttons(client, pid)
    assert NOT_SHOWING | {"Shown button"} <= everything.keys()
    assert all("showing" not in everything[name]["states"] for name in NOT_SHOWING), everything
    visible = push_buttons(client, pid, visible_only="true")
    assert set(visible) == {"Shown button"}, visible
    body = client.get("/desktop/accessibility-tree", params={"app": str(pid), "visible_only": "true"}).json()
    below_app = [node for node in walk(body["tree"]) if node["role"] not in ("desktop frame", "application")]
    assert below_app and all("showing" in node["states"] for node in below_app)


def test_an_element_not_showing_is_not_clicked(client: httpx.Client, app: HiddenWidgets) -> None:
    pid = app.process.pid
    buttons = push_buttons(client, pid)
    for name in sorted(NOT_SHOWING):
        answer = client.post("/desktop/accessibility/click", json={"id": buttons[name]["id"]})
        assert answer.status_code == 409, (name, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "ELEMENT_STATE_CONFLICT" and "not on screen" in error["message"], error
    # The app saw no click before the shown one (a click where the hidden page's button lies
    # would hit page one's): its clicks arrive in order.
    answer = client.post("/desktop/accessibility/click", json={"id": buttons["Shown button"]["id"]})
    assert answer.status_code == 200, answer.text
    clicked: list[str] = []

    def shown_clicked() -> bool:
        clicked.extend(app.clicked())
        return "Shown button" in clicked

    wait_until(shown_clicked, what="the shown button's click")
    assert clicked == ["Shown button"], clicked
