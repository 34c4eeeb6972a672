"""cua's computer-server, the peer our footprint and screenshot figures are set against.

It is installed from the package index into a throwaway venv (bench/out/cua-venv), pinned to what
it needs to start here: FastAPI 0.115.14 (newer releases break its routes) and tkinter (pyautogui's
MouseInfo imports it: Debian's python3-tk, which `make bench` installs). It runs on loopback against
the benchmark's desktop with CONTAINER_NAME unset: set, it would ask a cloud service to authenticate
every command and start a watchdog. Its screenshots go through pyscreeze, which on Linux calls
scrot when XDG_SESSION_TYPE says x11 (as cua's own desktop image sets it). Nothing of cua's is committed here; it is a side-by-side peer.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

CUA_PINS = ("cua-computer-server==0.1.25", "fastapi==0.115.14")
VENV = Path(__file__).resolve().parent / "out" / "cua-venv"
SYSTEM_PYTHON = "/usr/bin/python3"
START_TIMEOUT_S = 90.0


def ensure_installed() -> Path:
    """The venv's python, installing cua's server first if the pins changed or it is missing."""
    python = VENV / "bin" / "python"
    marker = VENV / ".installed"
    wanted = "\n".join(CUA_PINS)
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *CUA_PINS], check=True
        )
        marker.write_text(wanted)
    probe = subprocess.run([str(python), "-c", "import tkinter"], capture_output=True, check=False)
    if probe.returncode != 0:
        raise RuntimeError("cua's server needs tkinter: apt-get install python3-tk (`make bench` does)")
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CuaServer:
    """``with CuaServer(desktop_env) as cua:`` cua's computer-server on a free loopback port.

    ``url`` and ``pid`` name it; ``ready_s`` is the time from its start to its first answered
    ``GET /status``; ``rss_mib()`` is the resident memory of its process tree.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {k: v for k, v in env.items() if k != "CONTAINER_NAME"}
        self.env["XDG_SESSION_TYPE"] = "x11"  # as in cua's image: pyscreeze then grabs with scrot
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_s = 0.0
        self._log = VENV.parent / "cua-server.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> CuaServer:
        python = ensure_installed()
        argv = [str(python), "-m", "computer_server", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--log-level", "warning"]
        started = time.perf_counter()
        with self._log.open("wb") as log:
            self.process = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, started: float) -> None:
        assert self.process is not None
        deadline = started + START_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cua's server exited ({self.process.returncode}); see {self._log}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/status", timeout=2) as answer,
            ):
                if answer.status == 200:
                    self.ready_s = time.perf_counter() - started
                    return
            time.sleep(0.01)
        raise RuntimeError(f"cua's server did not answer /status within {START_TIMEOUT_S} s; see {self._log}")

    def command(self, name: str, **params: Any) -> dict[str, Any]:
        """One ``POST /cmd`` (its HTTP route; the answer is one server-sent ``data:`` line)."""
        request = urllib.request.Request(
            f"{self.url}/cmd",
            data=json.dumps({"command": name, "params": params}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = answer.read().decode()
        data: dict[str, Any] = json.loads(body.strip().removeprefix("data:").strip())
        if not data.get("success"):
            raise RuntimeError(f"cua {name}: {data.get('error')}")
        return data

    def screenshot_png(self) -> bytes:
        return base64.b64decode(self.command("screenshot")["image_data"])

    def rss_mib(self) -> float:
        root = psutil.Process(self.pid)
        total = 0
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total / 2**20

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":  # a quick look: python -m bench.peer_cua (needs DISPLAY)
    with CuaServer(dict(os.environ)) as cua:
        png = cua.screenshot_png()
        print(f"ready in {cua.ready_s * 1000:.0f} ms, rss {cua.rss_mib():.1f} MiB, screenshot {len(png)} B")
    sys.exit(0)
