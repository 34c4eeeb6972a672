"""GET /desktop/environment against xprop, xdpyinfo and setxkbmap."""

from __future__ import annotations

import getpass
import os
import re

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.x11.windowing import observe


def test_environment_matches_the_observers(desktop: DevDesktop, client: httpx.Client) -> None:
    env = client.get("/desktop/environment").json()
    assert env["display"] == desktop.display
    assert (env["display_server"], env["session_type"]) == ("x11", "x11")
    check = re.search(r"# (0x[0-9a-f]+)", observe(desktop, "xprop", "-root", "_NET_SUPPORTING_WM_CHECK"))
    assert check is not None
    wm_name = observe(desktop, "xprop", "-id", check.group(1), "-notype", "_NET_WM_NAME").split('"')[1]
    assert env["window_manager"] == wm_name
    if wm_name.lower() == "xfwm4":
        assert env["desktop_environment"] == "XFCE"
    assert env["user"] == getpass.getuser()
    assert env["uid"] == os.getuid()
    dims = re.search(
        r"dimensions:\s+(\d+)x(\d+) pixels \((\d+)x(\d+) millimeters\)", observe(desktop, "xdpyinfo")
    )
    assert dims is not None
    assert (env["screen"]["width"], env["screen"]["height"]) == (int(dims[1]), int(dims[2]))
    assert (env["screen"]["width_mm"], env["screen"]["height_mm"]) == (int(dims[3]), int(dims[4]))
    assert env["dpi"] == pytest.approx(int(dims[1]) * 25.4 / int(dims[3]), abs=0.1)
    layout = re.search(r"layout:\s+(\S+)", observe(desktop, "setxkbmap", "-query"))
    assert layout is not None
    assert env["keyboard_layout"] == layout[1]
    # The dev desktop runs a session bus with at-spi2-core available.
    assert env["accessibility_bus"] is True, env["accessibility_bus_error"]


def test_environment_is_an_action_too(client: httpx.Client) -> None:
    answer = client.post("/actions", json={"type": "environment"}).json()
    assert answer["success"] is True
    assert answer["result"]["display_server"] == "x11"
