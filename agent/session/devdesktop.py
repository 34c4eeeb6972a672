"""A private desktop for development and tests: Xvfb, a window manager and a session bus.

``computer-agent dev`` and the test suite both start one. Xvfb picks a free display itself
(``-displayfd``), so parallel runs never collide, unless a display is asked for (``dev
--display :5``); everything started here is ended here, by PID, in reverse order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

LOG = logging.getLogger(__name__)

WINDOW_MANAGERS = ("xfwm4", "openbox")
STOP_TIMEOUT_S = 5.0


def wait_for_groups_to_end(groups: set[int], timeout: float) -> bool:
    """Whether every process of these process groups ended (zombies count as ended) in time."""
    deadline = time.monotonic() + timeout
    while True:
        running = False
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getpgid(process.pid) in groups and process.status() != psutil.STATUS_ZOMBIE:
                    running = True
                    break
        if not running:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


@dataclass
class DevDesktop:
    width: int = 1280
    height: int = 720
    depth: int = 24
    window_manager: str | None = "auto"  # "auto", a program name, or None for no WM
    session_bus: bool = True
    display: str = ""  # ":N" to start Xvfb on that display; empty: a free one
    env: dict[str, str] = field(default_factory=dict)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _runtime_dir: Path | None = None

    def start(self) -> DevDesktop:
        self._runtime_dir = Path(tempfile.mkdtemp(prefix="computer-agent-desktop-"))
        self._runtime_dir.chmod(0o700)
        self.display = self._start_xvfb()
        env = dict(os.environ)
        env.update(
            DISPLAY=self.display,
            XDG_RUNTIME_DIR=str(self._runtime_dir),
            LANG=os.environ.get("LANG", "C.UTF-8") if "UTF-8" in os.environ.get("LANG", "") else "C.UTF-8",
        )
        # Apps must expose their accessibility trees and talk to this X server, whatever ours says.
        for name in ("NO_AT_BRIDGE", "GTK_A11Y", "WAYLAND_DISPLAY"):
            env.pop(name, None)
        if self.session_bus:
            env["DBUS_SESSION_BUS_ADDRESS"] = self._start_session_bus(env)
        self.env = env
        wm = self._pick_window_manager()
        if wm is not None:
            self.start_window_manager(wm)
        return self

    def _start_xvfb(self) -> str:
        read_fd, write_fd = os.pipe()
        wanted = [self.display.partition(".")[0]] if self.display else []
        proc = subprocess.Popen(
            [
                "Xvfb",
                *wanted,
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                f"{self.width}x{self.height}x{self.depth}",
                "-nolisten",
                "tcp",
                "-noreset",
                "+extension",
                "XTEST",
                "+extension",
                "RANDR",
            ],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(write_fd)
        self._procs.append(proc)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            if self.display:
                raise RuntimeError(f"Xvfb did not start on {self.display} (does another X server use it?)")
            raise RuntimeError("Xvfb did not start (is the xvfb package installed?)")
        return f":{number}"

    def _start_session_bus(self, env: dict[str, str]) -> str:
        proc = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1", "--nopidfile"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._procs.append(proc)
        assert proc.stdout is not None
        address = proc.stdout.readline().decode().strip()
        if not address:
            raise RuntimeError("dbus-daemon did not print its address")
        return address

    def _pick_window_manager(self) -> str | None:
        if self.window_manager is None:
            return None
        if self.window_manager != "auto":
            return self.window_manager
        for name in WINDOW_MANAGERS:
            if shutil.which(name):
                return name
        LOG.warning("no window manager found (tried %s)", ", ".join(WINDOW_MANAGERS))
        return None

    def start_window_manager(self, name: str) -> subprocess.Popen[bytes]:
        argv = {
            "xfwm4": ["xfwm4", "--compositor=off", "--sm-client-disable"],
            "openbox": ["openbox", "--sm-disable"],
        }.get(name, [name])
        proc = subprocess.Popen(
            argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self._procs.append(proc)
        self._wait_for_wm(proc)
        return proc

    def _wait_for_wm(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        """Wait until the WM announces itself with _NET_SUPPORTING_WM_CHECK."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            result = subprocess.run(
                ["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"],
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
            )
            if "window id" in result.stdout:
                return
            time.sleep(0.05)
        LOG.warning("window manager %s did not announce itself", proc.args)

    def stop(self) -> None:
        """End every process group started here, and return only once none of their members runs.

        The groups hold more than the processes started: the session bus's activated services
        (at-spi-bus-launcher, its own dbus-daemon, the registry) are in its group, orphaned when
        it ends; they are waited for too, so that nothing of this desktop is still exiting after.
        """
        for proc in reversed(self._procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        groups = {proc.pid for proc in self._procs}
        if not wait_for_groups_to_end(groups, STOP_TIMEOUT_S):
            for group in groups:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
            wait_for_groups_to_end(groups, STOP_TIMEOUT_S)
        self._procs.clear()
        if self._runtime_dir is not None:
            shutil.rmtree(self._runtime_dir, ignore_errors=True)

    def __enter__(self) -> DevDesktop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
