"""docker/entrypoint outside a container: it brings up X, a session bus and a WM, and the agent
answers; a killed agent comes back; SIGTERM ends every child. Observed with xdpyinfo, xprop, HTTP
and /proc, never with the script's own claims."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.displays import free_display_number
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Desktop:
    process: subprocess.Popen[bytes]
    display: str
    url: str
    token: str
    env: dict[str, str]
    log: Path

    def family(self) -> list[psutil.Process]:
        """Every process the entrypoint started (its session), itself included."""
        found = []
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getsid(proc.pid) == self.process.pid:
                    found.append(proc)
            except (ProcessLookupError, PermissionError):
                continue
        return found

    def agent_pid(self) -> int | None:
        for proc in self.family():
            try:
                if "serve" in proc.cmdline() and any("agent" in part for part in proc.cmdline()):
                    return proc.pid
            except psutil.Error:
                continue
        return None


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return b""


def _started_since(moment: float) -> list[int]:
    """Our descendants (orphans included: the test run is a subreaper) started since ``moment``."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.create_time() >= moment - 0.5:  # create_time has a coarse clock
                found.append(child.pid)
    return found


def _started_with_home(home: Path) -> list[int]:
    """Processes whose environment has ``HOME=home``: whatever this test's session started."""
    marker = b"\0HOME=" + bytes(home) + b"\0"
    return [pid for pid in psutil.pids() if pid != os.getpid() and marker in b"\0" + _environ(pid)]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_healthy(url: str, timeout: float) -> None:
    wait_until(lambda: _healthy(url), timeout=timeout, what=f"{url}/health to answer 200", interval=0.1)


@pytest.fixture
def entry_desktop(tmp_path: Path) -> Iterator[Desktop]:
    number = free_display_number()
    port = _free_port()
    token = "entrypoint-test-token"
    runtime = tmp_path / "runtime"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DISPLAY": f":{number}",
        "WIDTH": "1024",
        "HEIGHT": "600",
        # The image's own session where XFCE is installed (make deps installs it), else a bare WM.
        "SESSION": "startxfce4"
        if shutil.which("startxfce4")
        else "xfwm4 --compositor=off --sm-client-disable",
        "COMPUTER_AGENT_TOKEN": token,
        "COMPUTER_AGENT_HOST": "127.0.0.1",
        "COMPUTER_AGENT_PORT": str(port),
        "XDG_RUNTIME_DIR": str(runtime),
        "AGENT_COMMAND": f"{sys.executable} -m agent serve",
        "PYTHONPATH": str(ROOT),
    }
    log = tmp_path / "entrypoint.log"
    started = time.time()
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", str(ENTRYPOINT)], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    desktop = Desktop(process, f":{number}", f"http://127.0.0.1:{port}", token, env, log)
    try:
        yield desktop
    finally:
        if process.poll() is None:
            pids = [p.pid for p in desktop.family()]
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        # The XFCE session starts ssh-agent and gpg-agent, which leave its session (setsid) and
        # outlive the entrypoint: found as descendants started since (the test run is a child
        # subreaper, tests/leaks.py) or by the HOME this test gave them, and ended.
        for pid in {*_started_since(started), *_started_with_home(tmp_path)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_entrypoint_brings_up_the_desktop_and_supervises_the_agent(entry_desktop: Desktop) -> None:
    desktop = entry_desktop
    _wait_healthy(desktop.url, 60)
    observer_env = {"PATH": os.environ["PATH"], "DISPLAY": desktop.display}

    # X runs at WIDTH x HEIGHT, a window manager owns it, a session bus answers.
    info = subprocess.run(["xdpyinfo"], env=observer_env, capture_output=True, text=True, check=True).stdout
    assert "1024x600 pixels" in info

    def observed(*argv: str) -> str:
        return subprocess.run(argv, check=False, env=observer_env, capture_output=True, text=True).stdout

    wait_until(
        lambda: "window id" in observed("xprop", "-root", "_NET_SUPPORTING_WM_CHECK"),
        timeout=15,
        what="a window manager",
        interval=0.2,
    )
    if desktop.env["SESSION"] == "startxfce4":  # the whole XFCE session: its panel maps a window
        wait_until(
            lambda: observed("xdotool", "search", "--class", "xfce4-panel").strip(),
            timeout=30,
            what="an xfce4-panel window",
            interval=0.2,
        )
    bus = Path(desktop.env["XDG_RUNTIME_DIR"]) / "bus"
    assert bus.is_socket()
    assert (Path(desktop.env["XDG_RUNTIME_DIR"]) / "computer-agent-token").stat().st_mode & 0o077 == 0

    # The agent answers with the token from the environment, and drives that display.
    headers = {"Authorization": f"Bearer {desktop.token}"}
    shot = httpx.get(f"{desktop.url}/desktop/screenshot", headers=headers, timeout=30)
    assert shot.status_code == 200
    assert shot.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.headers["X-Screen-Width"] == "1024"
    assert httpx.get(f"{desktop.url}/desktop/screen-size", timeout=5).status_code == 401
    # Ready, the accessibility bus included (the session bus activates it).
    ready = wait_until(
        lambda: (
            (answer := httpx.get(f"{desktop.url}/ready", headers=headers, timeout=10)).status_code == 200
            and answer
        ),
        timeout=20,
        what="/ready to answer 200",
        interval=0.2,
    )
    assert ready.json()["checks"]["accessibility"]["ok"] is True
    # No process's environment holds the token, the entrypoint's own included (/proc/PID/environ
    # is what a process was exec'ed with: unsetting the variable in the script does not clear it).
    agent = desktop.agent_pid()
    assert agent is not None
    holders = [
        pid for pid in [p.pid for p in desktop.family()]
        if desktop.token.encode() in _environ(pid)
    ]  # fmt: skip
    assert holders == [], [(pid, psutil.Process(pid).cmdline()) for pid in holders]

    # A killed agent is restarted by the supervisor.
    os.kill(agent, signal.SIGKILL)
    wait_until(lambda: desktop.agent_pid() not in (None, agent), timeout=30, what="a new agent", interval=0.1)
    _wait_healthy(desktop.url, 30)

    # SIGTERM stops everything it started, and exits 0.
    family = [p.pid for p in desktop.family()]
    assert len(family) >= 5  # entrypoint, supervisors, Xvfb, dbus, WM, agent
    desktop.process.send_signal(signal.SIGTERM)
    assert desktop.process.wait(timeout=30) == 0

    def alive() -> list[int]:
        return [
            pid
            for pid in family
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]

    try:
        wait_until(lambda: not alive(), what="everything the entrypoint started to end")
    except AssertionError as error:
        raise AssertionError((alive(), desktop.log.read_text()[-3000:])) from error


def test_entrypoint_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "XDG_RUNTIME_DIR": str(tmp_path / "rt"),
        "COMPUTER_AGENT_TOKEN_FILE": str(tmp_path / "absent"),
    }
    result = subprocess.run(
        ["bash", str(ENTRYPOINT)], check=False, env=env, capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 2
    assert "no token" in result.stderr
