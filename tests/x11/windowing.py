"""Helpers for the window tests: real apps, and independent observers (wmctrl, xwininfo, xprop)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from agent.session.devdesktop import DevDesktop
from tests.conftest import stop_process
from tests.waiting import wait_until


@dataclass(frozen=True)
class Observed:
    """A window as ``wmctrl -lGp`` and ``xwininfo`` see it."""

    id: int
    pid: int
    title: str
    abs_x: int
    abs_y: int
    width: int
    height: int


def observe(desktop: DevDesktop, *argv: str) -> str:
    result = subprocess.run(argv, env=desktop.env, capture_output=True, timeout=10, check=False)
    return result.stdout.decode("utf-8", "replace")


def wmctrl(desktop: DevDesktop) -> dict[int, tuple[int, str]]:
    """Window id -> (pid, title) from ``wmctrl -lp`` (its geometry column is not frame-aware)."""
    found = {}
    for line in observe(desktop, "wmctrl", "-lp").splitlines():
        parts = line.split(None, 4)
        if len(parts) >= 4:
            found[int(parts[0], 16)] = (int(parts[2]), parts[4] if len(parts) > 4 else "")
    return found


def xwininfo(desktop: DevDesktop, window: int) -> dict[str, str]:
    text = observe(desktop, "xwininfo", "-id", hex(window))
    return {
        key.strip(): value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())
    }


def title_of(desktop: DevDesktop, window: int) -> str:
    """The title as xprop decodes it: _NET_WM_NAME, else WM_NAME (xprop decodes COMPOUND_TEXT)."""
    for prop in ("_NET_WM_NAME", "WM_NAME"):
        match = re.search(r'= "(.*)"$', xprop(desktop, window, "-notype", prop).strip())
        if match:
            return match.group(1)  # (xprop escapes quotes and backslashes; test titles have none)
    return ""


def observed(desktop: DevDesktop, window: int) -> Observed:
    info = xwininfo(desktop, window)
    pid, _ = wmctrl(desktop).get(window, (0, ""))
    return Observed(
        window,
        pid,
        title_of(desktop, window),
        int(info["Absolute upper-left X"]),
        int(info["Absolute upper-left Y"]),
        int(info["Width"]),
        int(info["Height"]),
    )


def xprop(desktop: DevDesktop, window: int, *props: str) -> str:
    return observe(desktop, "xprop", "-id", hex(window), *props)


def active_window(desktop: DevDesktop) -> int:
    match = re.search(r"window id # (0x[0-9a-f]+)", observe(desktop, "xprop", "-root", "_NET_ACTIVE_WINDOW"))
    return int(match.group(1), 16) if match else 0


def window_of(desktop: DevDesktop, pid: int, timeout: float = 15.0) -> int:
    """The id of the first window ``wmctrl`` lists for ``pid``, once the WM has placed and mapped it."""

    def listed() -> int | None:
        return next((window for window, (owner, _) in wmctrl(desktop).items() if owner == pid), None)

    window = wait_until(listed, timeout=timeout, what=f"a window of pid {pid}")
    wait_until(
        lambda: "IsViewable" in observe(desktop, "xwininfo", "-id", hex(window)),
        timeout=timeout,
        what=f"window {hex(window)} to be mapped",
    )
    return window


def start_app(desktop: DevDesktop, *argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(argv),
        env=desktop.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def stop_app(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc)
    if proc.stdout is not None:
        proc.stdout.close()
