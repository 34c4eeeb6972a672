"""A real ``computer-agent serve`` against a real Xvfb, watched from outside: a fake control plane
on loopback receives its beats, a datagram socket stands in for systemd's NOTIFY_SOCKET, and
Xvfb is killed and restarted under it."""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningAgent, start_agent
from tests.waiting import wait_until


# -- a fake control plane (stdlib, own thread) -----------------------------------------------------
@dataclass
class Plane:
    mode: str = "ok"  # ok, 500, hang
    beats: list[tuple[float, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for _, body, _ in self.beats]

    def times(self) -> list[float]:
        with self.lock:
            return [at for at, _, _ in self.beats]

    def wait(self, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
        """The first beat (in arrival order, from ``start`` on) that matches ``predicate``."""
        found: dict[str, Any] = wait_until(
            lambda: next((body for body in self.bodies() if predicate(body)), None),
            timeout=timeout,
            what=f"a beat {what}",
        )
        return found


def _handler(plane: Plane) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with plane.lock:
                plane.beats.append((time.monotonic(), body, dict(self.headers)))
            if plane.mode == "hang":
                plane.release.wait(30)
                return
            status = 500 if plane.mode == "500" else 200
            payload = b'{"ok": true}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def plane() -> Iterator[Plane]:
    plane = Plane()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(plane))
    server.daemon_threads = True
    plane.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/heartbeat"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield plane
    plane.release.set()
    server.shutdown()
    server.server_close()


# -- systemd's notify socket ---------------------------------------------------------------------
@dataclass
class NotifySocket:
    sock: socket.socket
    address: str
    messages: list[tuple[float, str]] = field(default_factory=list)

    def drain(self) -> list[str]:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                break
            self.messages.append((time.monotonic(), data.decode()))
        return [text for _, text in self.messages]

    def wait_until(self, predicate: Any, timeout: float, what: str) -> str:
        found: str = wait_until(
            lambda: next((message for message in self.drain() if predicate(message)), None),
            timeout=timeout,
            what=f"{what} received",
        )
        return found

    def wait_for(self, line: str, timeout: float) -> str:
        return self.wait_until(lambda message: line in message.splitlines(), timeout, line)


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"computer-agent-test-notify-{os.getpid()}-{time.monotonic_ns()}"
    sock.bind("\0" + name)  # abstract, as systemd's own socket is
    sock.setblocking(False)
    yield NotifySocket(sock, "@" + name)
    sock.close()


# -- an Xvfb that can be killed and restarted on the same display ---------------------------------
class Xvfb:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.display = ""

    def start(self) -> Xvfb:
        argv = ["Xvfb", "-screen", "0", "800x600x24", "-nolisten", "tcp", "-noreset"]
        if not self.display:
            read_fd, write_fd = os.pipe()
            self.proc = subprocess.Popen(
                [*argv, "-displayfd", str(write_fd)], pass_fds=(write_fd,), stderr=subprocess.DEVNULL
            )
            os.close(write_fd)
            with os.fdopen(read_fd) as pipe:
                self.display = ":" + pipe.readline().strip()
        else:
            self.proc = subprocess.Popen(["Xvfb", self.display, *argv[1:]], stderr=subprocess.DEVNULL)
            socket_path = Path(f"/tmp/.X11-unix/X{self.display[1:]}")
            wait_until(socket_path.exists, timeout=10, what="Xvfb's socket")
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def xvfb() -> Iterator[Xvfb]:
    server = Xvfb().start()
    yield server
    server.kill()


def _agent(
    tmp_path: Path, xvfb: Xvfb, plane: Plane, interval: str, notify: NotifySocket | None = None
) -> RunningAgent:
    cp_token = tmp_path / "cp-token"
    cp_token.write_text("control-plane-secret\n")
    cp_token.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    env["DISPLAY"] = xvfb.display
    if notify is not None:
        env.update(NOTIFY_SOCKET=notify.address, WATCHDOG_USEC="1000000")  # ping every 0.5 s
    return start_agent(
        env,
        tmp_path,
        "--display", xvfb.display,
        "--accessibility", "false",
        "--control-plane-url", plane.url,
        "--computer-id", "cmp_live",
        "--control-plane-token-file", str(cp_token),
        "--heartbeat-interval", interval,
        "--advertise-url", "http://192.0.2.10:8000",
    )  # fmt: skip


def _stop(agent: RunningAgent) -> int:
    agent.process.send_signal(signal.SIGTERM)
    return agent.process.wait(timeout=15)


def test_beats_readiness_and_systemd_follow_the_display(  # noqa: PLR0915 (one agent's life, start to stop)
    tmp_path: Path, xvfb: Xvfb, plane: Plane, notify_socket: NotifySocket
) -> None:
    agent = _agent(tmp_path, xvfb, plane, "0.5", notify_socket)
    try:
        ready_message = notify_socket.wait_for("READY=1", 10)
        assert "STATUS=ready" in ready_message.splitlines()
        assert httpx.get(f"{agent.url}/health").status_code == 200  # READY came after listen

        first = plane.wait(lambda b: b["ready"], 10, "ready")
        assert first["computer_id"] == "cmp_live"
        assert first["status"] == "ready"
        assert first["screen"] == {"width": 800, "height": 600}
        assert first["advertise_url"] == "http://192.0.2.10:8000"
        assert first["checks"]["display"]["ok"] is True
        assert first["agent"]["rss_bytes"] > 0 and first["memory"]["total"] > 0
        assert first["disk"][0]["path"] == "/"
        with plane.lock:
            assert plane.beats[0][2]["Authorization"] == "Bearer control-plane-secret"

        # Beats keep coming at the interval; seq grows, one boot id.
        start = len(plane.bodies())
        plane.wait(lambda b: b["seq"] >= first["seq"] + 3, 5, "seq+3")
        times = plane.times()[start - 1 :]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(0.35 < gap < 1.0 for gap in gaps[:3]), gaps
        assert len({b["boot_id"] for b in plane.bodies()}) == 1

        # The watchdog is fed from the loop, about every 0.5 s.
        time.sleep(1.2)  # pacing: two or more pings are due in this time
        pings = [text for text in notify_socket.drain() if text == "WATCHDOG=1"]
        assert len(pings) >= 2

        # Xvfb dies: at once a ready:false beat, STATUS= says why, /ready is 503.
        seen = len(plane.bodies())
        xvfb.kill()
        killed = time.monotonic()
        lost = plane.wait(lambda b: not b["ready"], 5, "ready:false")
        lost_at = plane.times()[plane.bodies().index(lost)]
        assert lost_at - killed < 1.5, lost_at - killed
        assert lost["checks"]["display"]["ok"] is False
        assert plane.bodies().index(lost) >= seen
        notify_socket.wait_until(
            lambda m: m.startswith("STATUS=") and "display" in m and m[7:] != "ready",
            5,
            "STATUS= naming the display",
        )
        with agent.client() as client:
            answer = client.get("/ready")
            assert answer.status_code == 503
            assert answer.json()["checks"]["display"]["ok"] is False

            # Xvfb comes back on the same display: ready:true within 2 s.
            count = len(plane.bodies())
            xvfb.start()
            back = time.monotonic()
            plane.wait(lambda b: b["ready"] and plane.bodies().index(b) >= count, 5, "ready again")
            arrivals = list(zip(plane.times(), plane.bodies(), strict=True))[count:]
            again_at = next(at for at, body in arrivals if body["ready"])
            assert again_at - back < 2.0, again_at - back
            assert client.get("/ready").status_code == 200
            notify_socket.wait_until(
                lambda m: m == "STATUS=ready", 3, "STATUS=ready after the display came back"
            )

            metrics = client.get("/metrics")
            assert metrics.status_code == 200
            assert metrics.headers["Content-Type"].startswith("text/plain")
            text = metrics.text
            assert "computer_agent_ready 1.0" in text
            assert 'computer_agent_readiness_check_ok{check="display"} 1.0' in text
            assert 'route="/ready",status="503"' in text
            last = next(
                line for line in text.splitlines() if line.startswith("computer_agent_heartbeat_last_success")
            )
            assert float(last.split()[-1]) > time.time() - 60
        assert httpx.get(f"{agent.url}/metrics").status_code == 401

        # SIGTERM: STOPPING=1 for systemd, a last beat saying stopping, exit 0.
        assert _stop(agent) == 0
        notify_socket.wait_for("STOPPING=1", 2)
        assert plane.bodies()[-1]["status"] == "stopping"
        assert plane.bodies()[-1]["ready"] is False
    finally:
        agent.stop()


def _latencies(client: httpx.Client, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        assert client.get("/desktop/cursor").status_code == 200
        samples.append(time.perf_counter() - started)
    return samples


@pytest.mark.parametrize("mode", ["500", "hang"])
def test_failing_control_plane_backs_off_without_slowing_the_api(
    tmp_path: Path, xvfb: Xvfb, plane: Plane, mode: str
) -> None:
    agent = _agent(tmp_path, xvfb, plane, "0.2")
    try:
        with agent.client() as client:
            plane.wait(lambda b: b["seq"] >= 2, 10, "two healthy beats")
            baseline = _latencies(client, 60)
            plane.mode = mode
            failing_from = len(plane.bodies())
            during = _latencies(client, 60)
            wanted = failing_from + (6 if mode == "500" else 4)
            deadline = time.monotonic() + 25
            while len(plane.bodies()) < wanted and time.monotonic() < deadline:
                during += _latencies(client, 10)
        times = plane.times()[failing_from:wanted]
        assert len(times) == wanted - failing_from, f"only {len(times)} beats while failing"
        gaps = [b - a for a, b in itertools.pairwise(times)]
        half = len(gaps) // 2
        assert sum(gaps[half:]) > sum(gaps[:half]), gaps  # intervals grow
        # (the jitter itself is measured in tests/unit/test_heartbeat.py, over many draws)
        # The API does not notice: median and 95th percentile stay where they were.
        p50_before, p50_during = statistics.median(baseline), statistics.median(during)
        p95_before = statistics.quantiles(baseline, n=20)[-1]
        p95_during = statistics.quantiles(during, n=20)[-1]
        assert p50_during < max(2 * p50_before, p50_before + 0.005), (p50_before, p50_during)
        assert p95_during < max(3 * p95_before, p95_before + 0.02), (p95_before, p95_during)
        print(
            f"\n{mode}: /desktop/cursor p50 {p50_before * 1000:.2f} -> {p50_during * 1000:.2f} ms, "
            f"p95 {p95_before * 1000:.2f} -> {p95_during * 1000:.2f} ms; gaps {[round(g, 2) for g in gaps]}"
        )
        plane.release.set()
        plane.mode = "ok"
        with contextlib.suppress(subprocess.TimeoutExpired):
            assert _stop(agent) == 0
    finally:
        agent.stop()
