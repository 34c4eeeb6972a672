"""Commands are bounded and die with their client (issue 11, findings 6, 7 and 8), against a real
agent process, observed in /proc and ps rather than in the agent's answers."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import RunningAgent, start_agent
from tests.unit.test_exec import agent_env

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(agent_env(), tmp_path_factory.mktemp("limits-agent"), "--display", ":93")
    yield running
    running.stop()


def send_raw(agent: RunningAgent, path: str, body: dict[str, object]) -> socket.socket:
    """A request on a raw socket, so the test decides exactly when the client goes away."""
    url = urlsplit(agent.url)
    assert url.hostname is not None and url.port is not None
    payload = json.dumps(body).encode()
    sock = socket.create_connection((url.hostname, url.port))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {agent.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    return sock


def alive(pid: int) -> bool:
    """The process exists and is not a zombie, per /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def read_pid(path: Path, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text().strip() if path.exists() else ""
        if text.endswith("\n") or text.isdigit():
            return int(text)
        time.sleep(0.02)
    raise TimeoutError(f"{path} was not written")


def wait_dead(pids: list[int], timeout: float = 5) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [pid for pid in left if alive(pid)]
    return left


@pytest.mark.parametrize("route", ["/exec", "/bash"])
def test_a_command_whose_client_left_is_killed(agent: RunningAgent, tmp_path: Path, route: str) -> None:
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}; exec sleep 300"
    body: dict[str, object] = {"command": script} if route == "/exec" else {"script": script}
    sock = send_raw(agent, route, {**body, "timeout_seconds": 600})
    try:
        pid = read_pid(pidfile)
        assert alive(pid)
    finally:
        sock.close()
    assert wait_dead([pid]) == []
