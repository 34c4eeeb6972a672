"""The agent survives its X server going away and recovers by itself when it comes back."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningAgent, start_agent
from tests.displays import free_display_number
from tests.waiting import wait_until


def start_xvfb(number: int, *extra: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "800x600x24", "-nolisten", "tcp", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(Path(f"/tmp/.X11-unix/X{number}").exists, timeout=10, what="Xvfb to start")
    return process


@pytest.fixture()
def lonely_display(tmp_path: Path) -> Iterator[tuple[int, RunningAgent]]:
    number = free_display_number()
    xvfb = start_xvfb(number)
    env = dict(os.environ, DISPLAY=f":{number}")
    agent = start_agent(env, tmp_path, "--display", f":{number}")
    yield number, agent
    agent.stop()
    if xvfb.poll() is None:
        xvfb.terminate()
        xvfb.wait()


def test_display_loss_is_503_and_recovery_is_automatic(lonely_display: tuple[int, RunningAgent]) -> None:
    number, agent = lonely_display
    with agent.client() as client:
        assert client.get("/ready").status_code == 200
        assert client.post("/desktop/click", json={"x": 10, "y": 10}).status_code == 200

        subprocess.run(["pkill", "-f", f"^Xvfb :{number} "], check=False)
        wait_until(lambda: not Path(f"/tmp/.X11-unix/X{number}").exists(), what="Xvfb's socket to go")

        for method, path, body in (
            ("POST", "/desktop/click", {"x": 10, "y": 10}),
            ("POST", "/desktop/type", {"text": "hi"}),
            ("GET", "/desktop/screenshot", None),
            ("GET", "/desktop/cursor", None),
        ):
            response = client.request(method, path, json=body)
            assert response.status_code == 503, (path, response.text)
            assert response.json()["error"]["code"] == "DISPLAY_UNAVAILABLE"
            assert response.headers["Retry-After"]
        wait_until(  # readiness is cached for at most half a second
            lambda: client.get("/ready").status_code == 503,
            timeout=2,
            what="/ready to notice the display gone",
        )
        assert client.get("/health").status_code == 200

        xvfb = start_xvfb(number)
        try:
            wait_until(lambda: client.get("/ready").status_code == 200, what="the agent to recover")
            assert client.post("/desktop/move", json={"x": 42, "y": 24}).status_code == 200
            assert client.get("/desktop/cursor").json() == {"x": 42, "y": 24}
            shot = client.get("/desktop/screenshot")
            assert shot.status_code == 200 and shot.headers["X-Screen-Width"] == "800"
        finally:
            xvfb.terminate()
            xvfb.wait()
    assert agent.process.poll() is None
