"""POST /desktop/wait-for (screen and window conditions) and screenshot_after, on a real Xvfb.

Observers: the apps themselves (a shell in an xterm writes when it stopped printing), xsetroot
and xdotool as other X clients making changes, wmctrl/xprop for windows, and the pixels of the
returned screenshots.
"""

from __future__ import annotations

import base64
import io
import itertools
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from agent.session.devdesktop import DevDesktop
from agent.x11.damage import LINGER
from tests.conftest import start_agent
from tests.displays import free_display_number
from tests.waiting import wait_until
from tests.x11.test_recovery import start_xvfb
from tests.x11.windowing import active_window, observe, start_app, stop_app, window_of


@pytest.fixture()
def apps(desktop: DevDesktop) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> subprocess.Popen[bytes]:
        proc = start_app(desktop, *argv)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_app(proc)


def in_background(call: Callable[[], httpx.Response]) -> Callable[[], httpx.Response]:
    """Run ``call`` in a thread; the returned function joins it and gives its answer."""
    answer: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answer.append(call()), daemon=True)
    thread.start()

    def join() -> httpx.Response:
        thread.join(timeout=60)
        assert answer, "the request did not finish"
        return answer[0]

    return join


def wait_for(client: httpx.Client, **condition: Any) -> dict[str, Any]:
    answer = client.post("/desktop/wait-for", json=condition)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_screen_stable_returns_quiet_ms_after_an_app_stops_drawing(
    desktop: DevDesktop, client: httpx.Client, apps: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    started, done = tmp_path / "started", tmp_path / "done"
    script = (
        f"touch {started}; for i in $(seq 40); do sleep 0.05; echo line $i; done; "
        f"date +%s.%N > {done}; sleep 60"
    )
    apps("xterm", "-geometry", "60x20+40+40", "-e", "sh", "-c", script)
    wait_until(started.exists, timeout=15, what="the xterm's shell to start printing")
    answer = wait_for(client, condition="screen_stable", quiet_ms=300, timeout=15)
    returned = time.time()
    assert answer["met"] is True and answer["condition"] == "screen_stable"
    last_print = float(done.read_text())
    # Not before the printing stopped and the screen stayed quiet for quiet_ms (xterm draws the
    # last line a moment before or after the shell writes the time); soon after that.
    assert returned - last_print >= 0.3 - 0.05
    assert returned - last_print < 0.3 + 1.0
    assert answer["changes"] > 10  # it saw the printing it waited out
    assert answer["elapsed_ms"] >= 1000  # the printing lasted ~2 s after the wait started


def test_screen_stable_times_out_honestly_while_the_screen_keeps_changing(
    desktop: DevDesktop, client: httpx.Client, apps: Callable[..., subprocess.Popen[bytes]]
) -> None:
    apps("xterm", "-geometry", "40x10+300+300", "-e", "sh", "-c", "while true; do date +%N; sleep 0.05; done")
    wait_for(client, condition="screen_changed", region={"x": 300, "y": 300, "width": 200, "height": 100})
    before = time.monotonic()
    answer = wait_for(client, condition="screen_stable", quiet_ms=500, timeout=1.5)
    took = time.monotonic() - before
    assert answer["met"] is False
    assert 1.5 <= took < 4
    assert answer["elapsed_ms"] >= 1500


def test_screen_changed_sees_another_client_and_honours_the_region(
    desktop: DevDesktop, client: httpx.Client
) -> None:
    stop = threading.Event()

    def paint_root() -> None:  # another X client changes the screen until told to stop
        colours = ["#102030", "#304050", "#506070"]
        i = 0
        while not stop.is_set():
            observe(desktop, "xsetroot", "-solid", colours[i % 3])
            i += 1
            time.sleep(0.1)

    painter = threading.Thread(target=paint_root, daemon=True)
    painter.start()
    try:
        answer = wait_for(client, condition="screen_changed", timeout=10)
        assert answer["met"] is True
        assert answer["changed"]["width"] > 0 and answer["changes"] >= 1
        assert answer["elapsed_ms"] < 10000
    finally:
        stop.set()
        painter.join()


def test_screen_changed_in_a_region_ignores_changes_elsewhere(
    desktop: DevDesktop, client: httpx.Client, apps: Callable[..., subprocess.Popen[bytes]]
) -> None:
    # A clock printing in an xterm at the top left: the bottom right corner stays still.
    apps("xterm", "-geometry", "30x5+0+0", "-e", "sh", "-c", "while true; do date +%N; sleep 0.05; done")
    screen = client.get("/desktop/screen-size").json()
    corner = {"x": screen["width"] - 20, "y": screen["height"] - 20, "width": 20, "height": 20}
    before = time.monotonic()
    answer = wait_for(client, condition="screen_changed", region=corner, timeout=1)
    assert answer == {
        "met": False,
        "condition": "screen_changed",
        "elapsed_ms": answer["elapsed_ms"],
        "changes": 0,
    }
    assert time.monotonic() - before >= 1
    near = wait_for(client, condition="screen_changed", region={"x": 0, "y": 0, "width": 300, "height": 100})
    assert near["met"] is True


def test_an_idle_screen_shows_no_change_when_the_monitor_wakes_up(client: httpx.Client) -> None:
    """The DAMAGE object goes LINGER s after its last user; re-created, the server reports the
    whole screen as damaged once. That report is not a change of an idle screen."""
    rest = LINGER + 1.5
    time.sleep(rest)
    changed = wait_for(client, condition="screen_changed", timeout=1)
    assert (changed["met"], changed["changes"]) == (False, 0), changed
    time.sleep(rest)
    stable = wait_for(client, condition="screen_stable", quiet_ms=200, timeout=2)
    assert (stable["met"], stable["changes"]) == (True, 0), stable
    time.sleep(rest)
    moved = client.post("/desktop/move", json={"x": 7, "y": 7, "screenshot_after": {"quiet_ms": 200}})
    assert moved.status_code == 200, moved.text
    assert moved.json()["screenshot"]["changes"] == 0  # Xvfb draws no cursor: a move changes nothing
    # The screen was idle all along: a wait on the armed monitor sees nothing either.
    assert wait_for(client, condition="screen_changed", timeout=0.5)["met"] is False


def test_window_appears_gets_focus_and_disappears(
    desktop: DevDesktop, client: httpx.Client, apps: Callable[..., subprocess.Popen[bytes]]
) -> None:
    title = f"wf-{secrets.token_hex(4)}"
    pending = in_background(
        lambda: client.post(
            "/desktop/wait-for", json={"condition": "window", "title": f"^{title}$", "timeout": 20}
        )
    )
    time.sleep(0.3)  # the wait is under way before the window exists (a test of waiting, not of a race)
    proc = apps("xterm", "-T", title, "-class", "WaitForTest", "-e", "sleep 60")
    answer = pending().json()
    assert answer["met"] is True and answer["condition"] == "window"
    assert answer["window"]["title"] == title
    assert answer["window"]["pid"] == proc.pid
    window = int(answer["window"]["id"], 16)
    assert window == window_of(desktop, proc.pid)

    other = apps("xterm", "-T", f"{title}-other", "-e", "sleep 60")
    other_window = window_of(desktop, other.pid)
    observe(desktop, "xdotool", "windowactivate", "--sync", str(other_window))
    wait_until(lambda: active_window(desktop) == other_window, what="the other xterm to be active")
    pending = in_background(
        lambda: client.post(
            "/desktop/wait-for",
            json={"condition": "window", "class": "^WaitForTest$", "state": "focused", "timeout": 20},
        )
    )
    time.sleep(0.3)
    observe(desktop, "xdotool", "windowactivate", str(window))
    focused = pending().json()
    assert focused["met"] is True and focused["window"]["id"] == hex(window)
    assert active_window(desktop) == window

    pending = in_background(
        lambda: client.post(
            "/desktop/wait-for", json={"condition": "window", "title": f"^{title}$", "state": "disappears"}
        )
    )
    time.sleep(0.3)
    proc.kill()
    gone = pending().json()
    assert gone["met"] is True and "window" not in gone
    assert window not in [int(w["id"], 16) for w in client.get("/desktop/windows").json()["windows"]]


def test_a_window_that_never_comes_times_out_honestly(client: httpx.Client) -> None:
    before = time.monotonic()
    answer = wait_for(client, condition="window", title="^no such window ever$", timeout=1.2)
    took = time.monotonic() - before
    assert answer["met"] is False and "window" not in answer
    assert 1.2 <= took < 4 and answer["elapsed_ms"] >= 1200


def test_wait_for_in_actions_and_batch(client: httpx.Client) -> None:
    action = client.post("/actions", json={"type": "wait_for", "condition": "screen_stable", "quiet_ms": 50})
    assert action.status_code == 200, action.text
    assert action.json()["result"]["met"] is True
    batch = client.post(
        "/batch",
        json={
            "actions": [
                {"type": "wait_for", "condition": "window", "title": "^never$", "timeout": 0.3},
                {"type": "wait_for", "condition": "screen_stable", "quiet_ms": 50, "timeout": 5},
            ]
        },
    )
    steps = batch.json()["results"]
    assert [step["result"]["met"] for step in steps] == [False, True]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"condition": "sunrise"}, "condition"),
        ({"condition": "window"}, "title and/or a class"),
        ({"condition": "window", "title": "(unclosed"}, "regular expression"),
        ({"condition": "screen_stable", "title": "x"}, "does not take title"),
        ({"condition": "screen_stable", "class": "x"}, "does not take class"),
        ({"condition": "screen_stable", "timeout": 31}, "timeout"),
        ({"condition": "screen_changed", "state": "focused"}, "does not take state"),
        ({"condition": "text"}, "needs text"),
        ({"condition": "element"}, "at least one of"),
        ({"condition": "screen_stable", "timeout": 0}, "timeout"),
        ({"condition": "screen_stable", "quiet_ms": -1}, "quiet_ms"),
    ],
)
def test_bad_conditions_are_400s_naming_the_problem(
    client: httpx.Client, body: dict[str, Any], names: str
) -> None:
    answer = client.post("/desktop/wait-for", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert names in answer.json()["error"]["message"]


def dark_fraction(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    grey = image.convert("L").crop(box)
    histogram = grey.histogram()
    return sum(histogram[:60]) / (grey.width * grey.height)


def test_screenshot_after_shows_the_actions_effect(
    desktop: DevDesktop, client: httpx.Client, apps: Callable[..., subprocess.Popen[bytes]]
) -> None:
    # A white xterm whose shell turns it to reverse video (black) when Return is pressed.
    proc = apps(
        "xterm", "-bg", "white", "-fg", "black", "-geometry", "40x10+100+100",
        "-e", "sh", "-c", "read x; printf '\\033[?5h'; sleep 60",
    )  # fmt: skip
    window = window_of(desktop, proc.pid)
    observe(desktop, "xdotool", "windowactivate", "--sync", str(window))
    geometry = client.get(f"/desktop/window/{hex(window)}/position").json()
    box = (geometry["x"] + 10, geometry["y"] + 30, geometry["x"] + 200, geometry["y"] + 100)
    before = Image.open(io.BytesIO(client.get("/desktop/screenshot").content))
    assert dark_fraction(before, box) < 0.2

    # quiet_ms above the default: the shell must be scheduled between the echo and its printf,
    # which a loaded test machine may delay past 250 ms.
    answer = client.post("/desktop/key", json={"key": "Return", "screenshot_after": {"quiet_ms": 600}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    shot = body["screenshot"]
    assert shot["format"] == "png" and shot["settled"] is True and shot["changes"] >= 1
    after = Image.open(io.BytesIO(base64.b64decode(shot["image"])))
    assert after.size == before.size
    assert dark_fraction(after, box) > 0.8  # the reverse video the key caused, no sleep needed


def test_screenshot_after_in_actions_and_batch_with_options(
    desktop: DevDesktop, client: httpx.Client
) -> None:
    screen = client.get("/desktop/screen-size").json()
    single = client.post(
        "/actions",
        json={
            "type": "move",
            "x": 5,
            "y": 5,
            "screenshot_after": {"format": "jpeg", "scale": 0.5, "quiet_ms": 50},
        },
    )
    assert single.status_code == 200, single.text
    shot = single.json()["result"]["screenshot"]
    assert shot["format"] == "jpeg" and shot["width"] == screen["width"] // 2
    assert Image.open(io.BytesIO(base64.b64decode(shot["image"]))).format == "JPEG"

    batch = client.post(
        "/batch",
        json={
            "actions": [
                {"type": "move", "x": 10, "y": 10},
                {
                    "type": "move",
                    "x": 20,
                    "y": 20,
                    "screenshot_after": {"max_width": 320, "max_wait_ms": 500},
                },
            ]
        },
    ).json()
    assert "screenshot" not in batch["results"][0]["result"]
    assert batch["results"][1]["result"]["screenshot"]["width"] == 320
    plain = client.post("/desktop/move", json={"x": 30, "y": 30})
    assert plain.json() == {"success": True}  # no screenshot unless asked

    bad = client.post("/desktop/move", json={"x": 1, "y": 1, "screenshot_after": {"quiet_ms": -5}})
    assert bad.status_code == 400 and "screenshot_after.quiet_ms" in bad.text


def test_the_monitor_recovers_when_the_x_server_comes_back(tmp_path: Path) -> None:
    number = free_display_number()
    env = dict(os.environ, DISPLAY=f":{number}")
    xvfb = start_xvfb(number)
    agent = start_agent(env, tmp_path, "--display", f":{number}")
    try:
        with agent.client() as client:
            assert wait_for(client, condition="screen_stable", quiet_ms=50, timeout=5)["met"] is True
            pending = in_background(
                lambda: client.post("/desktop/wait-for", json={"condition": "screen_changed", "timeout": 30})
            )
            time.sleep(0.5)
            xvfb.terminate()  # the X server goes away under a waiter
            xvfb.wait()
            lost = pending()
            assert lost.status_code == 503 and lost.json()["error"]["code"] == "DISPLAY_UNAVAILABLE"
            down = client.post("/desktop/wait-for", json={"condition": "screen_stable", "timeout": 5})
            assert down.status_code == 503, down.text

            xvfb = start_xvfb(number)

            def stable_again() -> bool:
                answer = client.post("/desktop/wait-for", json={"condition": "screen_stable", "quiet_ms": 50})
                return answer.status_code == 200 and answer.json()["met"] is True

            wait_until(stable_again, timeout=15, what="wait-for to work on the new X server", interval=0.3)
            stop = threading.Event()

            def paint() -> None:  # another X client changes the screen until told to stop
                for colour in itertools.cycle(["#123456", "#654321"]):
                    if stop.is_set():
                        return
                    subprocess.run(["xsetroot", "-solid", colour], env=env, check=False, timeout=10)

            painter = threading.Thread(target=paint, daemon=True)
            painter.start()
            try:
                assert wait_for(client, condition="screen_changed", timeout=10)["met"] is True
            finally:
                stop.set()
                painter.join()
    finally:
        agent.stop()
        if xvfb.poll() is None:
            xvfb.terminate()
            xvfb.wait()
