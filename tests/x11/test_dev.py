"""``computer-agent dev`` honours the options ``serve`` has: the display, the token, no-auth.

Each test starts a real ``dev`` (Xvfb, window manager, session bus and the agent) and looks at
the effect from outside: the X socket of the display asked for, the pointer position xdotool
reads on it, which bearer token the HTTP API accepts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tests.conftest import AGENT_BIN, stop_process


def free_display() -> int:
    """A display number no X server here uses (no lock file, no socket)."""
    for number in range(150, 400):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    raise RuntimeError("no free display number")


@dataclass
class Dev:
    url: str
    process: subprocess.Popen[str]
    env: dict[str, str]


@contextmanager
def run_dev(tmp: Path, *argv: str, env: dict[str, str] | None = None) -> Iterator[Dev]:
    """Start ``computer-agent dev --port 0 ARGV`` with its state under ``tmp``; stop it after."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("COMPUTER_AGENT_")}
    environment.pop("DISPLAY", None)
    environment.update(XDG_STATE_HOME=str(tmp / "state"), **(env or {}))
    log = (tmp / "dev.log").open("w")
    process = subprocess.Popen(
        [str(AGENT_BIN), "dev", "--port", "0", *argv],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("event") == "listening":
                url = entry["url"]
        assert url is not None, (tmp / "dev.log").read_text()[-2000:]
        yield Dev(url, process, environment)
    finally:
        stop_process(process, timeout=15)
        if process.stdout is not None:
            process.stdout.close()
        log.close()


def get(dev: Dev, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(dev.url + path, headers=headers, timeout=30)


def test_dev_serves_the_display_asked_for(tmp_path: Path) -> None:
    number = free_display()
    token_file = tmp_path / "token"
    token_file.write_text("display-test-token\n")
    token_file.chmod(0o600)
    with run_dev(tmp_path, "--display", f":{number}", "--token-file", str(token_file)) as dev:
        assert Path(f"/tmp/.X11-unix/X{number}").exists()
        answer = httpx.post(
            dev.url + "/desktop/move",
            json={"x": 123, "y": 77},
            headers={"Authorization": "Bearer display-test-token"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        where = subprocess.run(
            ["xdotool", "getmouselocation", "--shell"],
            env=dict(dev.env, DISPLAY=f":{number}"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "X=123\n" in where and "Y=77\n" in where
    assert not Path(f"/tmp/.X11-unix/X{number}").exists()  # dev stopped the Xvfb it started


def test_dev_takes_the_display_from_the_environment_too(tmp_path: Path) -> None:
    number = free_display()
    with run_dev(tmp_path, env={"COMPUTER_AGENT_DISPLAY": f":{number}"}):
        assert Path(f"/tmp/.X11-unix/X{number}").exists()


def test_dev_uses_the_token_in_the_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "my-token"
    token_file.write_text("a-token-of-my-own\n")
    token_file.chmod(0o600)
    with run_dev(tmp_path, "--token-file", str(token_file)) as dev:
        assert get(dev, "/desktop/screen-size", "a-token-of-my-own").status_code == 200
        assert get(dev, "/desktop/screen-size", "another-token").status_code == 401
    assert not (tmp_path / "state" / "computer-agent" / "dev-token").exists()


def test_dev_writes_a_new_token_where_the_token_file_does_not_exist_yet(tmp_path: Path) -> None:
    token_file = tmp_path / "new" / "token"
    with run_dev(tmp_path, "--token-file", str(token_file)) as dev:
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert get(dev, "/desktop/screen-size", token_file.read_text().strip()).status_code == 200


def test_dev_without_auth_when_asked(tmp_path: Path) -> None:
    with run_dev(tmp_path, "--insecure-no-auth") as dev:
        assert get(dev, "/desktop/screen-size", None).status_code == 200


def test_dev_refuses_a_display_it_cannot_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(AGENT_BIN), "dev", "--display", "otherhost:0", "--insecure-no-auth"],
        env=dict(os.environ, XDG_STATE_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--display" in result.stderr and "otherhost:0" in result.stderr


def test_dev_stopped_while_it_starts_leaves_no_desktop_behind(tmp_path: Path) -> None:
    """SIGTERM once the window manager runs (before the agent listens): Xvfb, bus and WM go too."""
    number = free_display()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("COMPUTER_AGENT_")}
    environment.update(XDG_STATE_HOME=str(tmp_path / "state"))
    process = subprocess.Popen(
        [str(AGENT_BIN), "dev", "--port", "0", "--display", f":{number}", "--insecure-no-auth"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        socket = Path(f"/tmp/.X11-unix/X{number}")
        desktop: list[psutil.Process] = []
        deadline = time.monotonic() + 30
        while "xfwm4" not in _names(desktop) and time.monotonic() < deadline:
            time.sleep(0.01)
            desktop = psutil.Process(process.pid).children(recursive=True)
        assert {"Xvfb", "dbus-daemon", "xfwm4"} & set(_names(desktop))
    finally:
        stop_process(process, timeout=15)
    assert process.returncode != -signal.SIGKILL
    _gone, alive = psutil.wait_procs(desktop, timeout=5)
    assert not alive, [" ".join(p.cmdline()) for p in alive]
    assert not socket.exists()


def _names(processes: list[psutil.Process]) -> list[str]:
    """The names of those still running (start-up helpers come and go between listing and reading)."""
    names = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            names.append(process.name())
    return names


def test_dev_banner_shows_the_port_it_listens_on(tmp_path: Path) -> None:
    """With --port 0 the banner names the port the system chose, not port 0."""
    with run_dev(tmp_path, "--display", f":{free_display()}") as dev:
        banner = wait_for_banner(tmp_path / "dev.log")
    assert f"API:   {dev.url}  " in banner and f"{dev.url}/desktop/screenshot" in banner
    assert ":0  " not in banner


def wait_for_banner(log: Path) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = log.read_text()
        if "try:" in text:
            return text
        time.sleep(0.1)
    raise AssertionError(log.read_text()[-2000:])
