"""sd_notify: the datagrams systemd would receive, read from a real socket we bind."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.supervision.sdnotify import Notifier, socket_address, watchdog_interval


def _receive_all(sock: socket.socket) -> list[str]:
    messages = []
    sock.setblocking(False)
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    yield sock, path
    sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"computer-agent-test-{os.getpid()}-{time.monotonic_ns()}"
    sock.bind("\0" + name)
    yield sock, "@" + name
    sock.close()


def test_address_forms() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@/org/freedesktop/systemd1/notify") == b"\0/org/freedesktop/systemd1/notify"
    assert socket_address("") is None
    assert socket_address("relative") is None


def test_watchdog_interval_is_half_of_usec_and_only_for_us() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "20000000"}) == 10.0
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}) == 10.0
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None


def test_messages_arrive_on_a_path_socket(path_socket: tuple[socket.socket, str]) -> None:
    sock, path = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.ready("ready")
    notifier.status("degraded: display: gone")
    notifier.status("degraded: display: gone")  # unchanged: not sent again
    notifier.stopping()
    messages = _receive_all(sock)
    assert messages[0].splitlines()[:2] == ["READY=1", "STATUS=ready"]
    assert messages[1] == "STATUS=degraded: display: gone"
    assert messages[2].splitlines() == ["STOPPING=1", "STATUS=stopping"]
    assert len(messages) == 3


def test_messages_arrive_on_an_abstract_socket(abstract_socket: tuple[socket.socket, str]) -> None:
    sock, name = abstract_socket
    Notifier({"NOTIFY_SOCKET": name}).notify("READY=1")
    assert _receive_all(sock) == ["READY=1"]


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False


def test_a_missing_socket_does_not_raise(tmp_path: Path) -> None:
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "absent")}).notify("READY=1") is False


async def test_watchdog_pings_from_the_loop_at_half_the_period(
    abstract_socket: tuple[socket.socket, str],
) -> None:
    sock, name = abstract_socket
    notifier = Notifier({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "200000"})  # 0.2 s: ping every 0.1 s
    notifier.start_watchdog()
    await asyncio.sleep(0.55)  # pacing: the pings due in 0.55 s are counted
    await notifier.close()
    pings = [m for m in _receive_all(sock) if m == "WATCHDOG=1"]
    assert 4 <= len(pings) <= 7


def test_from_environment_hides_the_socket_from_children(
    monkeypatch: pytest.MonkeyPatch, abstract_socket: tuple[socket.socket, str]
) -> None:
    sock, name = abstract_socket
    monkeypatch.setenv("NOTIFY_SOCKET", name)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    notifier = Notifier.from_environment()
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ
    notifier.notify("READY=1")
    assert _receive_all(sock) == ["READY=1"]
