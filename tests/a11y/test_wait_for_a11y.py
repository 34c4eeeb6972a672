"""POST /desktop/wait-for on accessibility conditions (element, text), with real GTK apps.

Observers: zenity's own exit code (a click at the centre wait-for answered reaches the button)
and the app's process (the element disappears when it is gone).
"""

from __future__ import annotations

import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import run_observer

Launch = Callable[..., subprocess.Popen[str]]


@pytest.fixture()
def launch(desktop: DevDesktop) -> Iterator[Launch]:
    """Start GTK apps on the test desktop; every one is ended (by pid) after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(*argv: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            argv, env=desktop.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def waiting(client: httpx.Client, body: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """POST /desktop/wait-for in a thread; the returned function gives its answer."""
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(client.post("/desktop/wait-for", json=body)))
    thread.start()
    time.sleep(0.3)  # the wait is under way before the app starts

    def join() -> dict[str, Any]:
        thread.join(timeout=60)
        assert answers and answers[0].status_code == 200, answers[0].text if answers else "no answer"
        result: dict[str, Any] = answers[0].json()
        return result

    return join


def test_an_element_appears_and_its_centre_is_clickable(
    desktop: DevDesktop, client: httpx.Client, launch: Launch
) -> None:
    label = f"Go-{secrets.token_hex(3)}"
    pending = waiting(
        client, {"condition": "element", "role": "button", "name": label, "visible_only": True, "timeout": 30}
    )
    zenity = launch("zenity", "--question", "--text", "Proceed?", "--ok-label", label)
    answer = pending()
    assert answer["met"] is True and answer["condition"] == "element"
    element = answer["element"]
    assert element["name"] == label and element["role"] == "push button"
    centre = element["center"]
    run_observer(desktop, "xdotool", "mousemove", str(centre["x"]), str(centre["y"]), "click", "1")
    assert zenity.wait(timeout=10) == 0  # the OK button (relabelled) was where wait-for said

    gone = client.post(
        "/desktop/wait-for",
        json={"condition": "element", "name": label, "state": "disappears", "timeout": 10},
    ).json()
    assert gone["met"] is True and "element" not in gone


def test_text_appears_in_a_dialog(client: httpx.Client, launch: Launch) -> None:
    words = f"the build finished {secrets.token_hex(3)}"
    pending = waiting(client, {"condition": "text", "text": words.upper(), "timeout": 30})
    zenity = launch("zenity", "--info", "--text", f"Note: {words}.")
    answer = pending()
    assert answer["met"] is True
    assert words in answer["element"]["name"]
    assert zenity.poll() is None


def test_an_element_that_disappears_when_its_app_ends(client: httpx.Client, launch: Launch) -> None:
    label = f"Stay-{secrets.token_hex(3)}"
    zenity = launch("zenity", "--question", "--text", "Proceed?", "--cancel-label", label)
    appeared = client.post(
        "/desktop/wait-for", json={"condition": "element", "name": label, "timeout": 30}
    ).json()
    assert appeared["met"] is True
    pending = waiting(client, {"condition": "element", "name": label, "state": "disappears", "timeout": 30})
    zenity.kill()
    answer = pending()
    assert answer["met"] is True
    assert zenity.wait(timeout=10) != 0


def test_element_and_text_timeouts_are_honest(client: httpx.Client) -> None:
    for body in (
        {"condition": "element", "role": "button", "name": "no such button anywhere", "timeout": 1},
        {"condition": "text", "text": "no such text anywhere 7f3a", "timeout": 1},
    ):
        before = time.monotonic()
        answer = client.post("/desktop/wait-for", json=body)
        took = time.monotonic() - before
        assert answer.status_code == 200, answer.text
        assert answer.json()["met"] is False and "element" not in answer.json()
        assert 1 <= took < 6


def test_an_element_comes_back_in_the_callers_coordinate_space(
    desktop: DevDesktop, client: httpx.Client, launch: Launch
) -> None:
    space = {"X-Coordinate-Space": "1024x768"}  # on 1280x720: scale 0.8, 96 px of letterbox on top
    label = f"Here-{secrets.token_hex(3)}"
    zenity = launch("zenity", "--question", "--text", "Proceed?", "--ok-label", label)
    body = {"condition": "element", "role": "button", "name": label, "visible_only": True, "timeout": 30}
    screen = client.post("/desktop/wait-for", json=body).json()["element"]
    answer = client.post("/desktop/wait-for", json=body, headers=space)
    assert answer.status_code == 200, answer.text
    element = answer.json()["element"]
    [found] = client.get(
        "/desktop/accessibility/find", params={"role": "button", "name": label}, headers=space
    ).json()["nodes"]
    assert element["center"] == found["center"] and element["x"] == found["x"]
    assert element["center"] != screen["center"]
    centre = element["center"]  # mapped back to the screen, it is the button
    x, y = int((centre["x"] + 0.5) / 0.8), int((centre["y"] - 96 + 0.5) / 0.8)
    assert abs(x - screen["center"]["x"]) <= 1 and abs(y - screen["center"]["y"]) <= 1
    run_observer(desktop, "xdotool", "mousemove", str(x), str(y), "click", "1")
    assert zenity.wait(timeout=10) == 0


def test_text_matches_the_text_content_of_entries_and_text_views(
    client: httpx.Client, launch: Launch, tmp_path: Path
) -> None:
    typed = f"unique-typed-{secrets.token_hex(3)}"
    pending = waiting(client, {"condition": "text", "text": typed[:-2].upper(), "timeout": 10})
    launch("zenity", "--entry", "--title", "entry", "--entry-text", typed)
    answer = pending()
    assert answer["met"] is True, answer
    assert answer["element"]["role"] == "text" and typed not in answer["element"]["name"]
    needle = f"needle-{secrets.token_hex(3)}"
    shown = tmp_path / "shown.txt"
    shown.write_text(f"hay\nmore hay with a {needle} inside\nhay\n")
    launch("zenity", "--text-info", "--title", "viewer", "--filename", str(shown))
    body = {"condition": "text", "text": needle, "role": "text", "app": "zenity", "timeout": 10}
    found = client.post("/desktop/wait-for", json=body)
    assert found.status_code == 200 and found.json()["met"] is True, found.text


def test_an_app_not_running_yet_is_waited_for_and_one_gone_has_disappeared(
    client: httpx.Client, launch: Launch
) -> None:
    label = f"Later-{secrets.token_hex(3)}"
    body = {"condition": "element", "app": "zenity", "role": "push button", "name": label, "timeout": 20}
    pending = waiting(client, body)  # zenity is not running: no 404, the wait goes on
    time.sleep(1)
    zenity = launch("zenity", "--question", "--text", "Proceed?", "--ok-label", label)
    appeared = pending()
    assert appeared["met"] is True and appeared["element"]["name"] == label
    text = waiting(
        client, {"condition": "text", "app": "zenity", "text": label, "state": "disappears", "timeout": 20}
    )
    zenity.kill()
    assert zenity.wait(timeout=10) != 0
    assert text()["met"] is True
    gone = client.post("/desktop/wait-for", json={**body, "state": "disappears", "timeout": 5})
    assert gone.status_code == 200 and gone.json()["met"] is True, gone.text
