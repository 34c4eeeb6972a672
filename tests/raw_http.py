"""Raw-socket HTTP for tests of the agent's HTTP edge: bytes as a browser or attacker sends them."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.conftest import RunningAgent
from tests.waiting import wait_until


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def envelope(self) -> dict[str, object]:
        """The JSON error envelope (asserting it is one, with the same id as X-Request-Id)."""
        assert self.headers["Content-Type"].startswith("application/json"), (self.status, self.body)
        data = json.loads(self.body)
        assert set(data) == {"error", "request_id"}, data
        assert set(data["error"]) == {"code", "message", "details"}, data
        assert data["request_id"] == self.headers["X-Request-Id"]
        return data["error"]  # type: ignore[no-any-return]


def port_of(agent: RunningAgent) -> int:
    return int(agent.url.rsplit(":", 1)[1])


def connect(agent: RunningAgent) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port_of(agent)), timeout=30)


def exchange(agent: RunningAgent, raw: bytes) -> Answer:
    """Send ``raw`` bytes on a new connection and read one HTTP answer."""
    with connect(agent) as sock:
        # The agent may answer (and close) before reading everything: then read that answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> Answer:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return Answer(response.status, response.headers, response.read())


def request(
    agent: RunningAgent, method: str, path: str, body: bytes = b"", host: str | None = None, **headers: str
) -> bytes:
    """A raw HTTP/1.1 request (header names given with underscores for dashes)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port_of(agent)}'}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body or method in {"POST", "PUT"}:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def closed_by_server(sock: socket.socket, within: float, drip: bytes = b"") -> bool:
    """Whether the server closes ``sock`` within ``within`` s (dripping ``drip`` every 0.5 s)."""
    deadline = time.monotonic() + within
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            if drip:
                sock.sendall(drip)
            data = sock.recv(65536)
            if not data:
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def log_settled(agent: RunningAgent, timeout: float = 10.0) -> str:
    """The agent's log once every line for requests made so far is in it.

    A request with a fresh X-Request-Id is made after them; its access-log line comes after theirs.
    """
    marker = f"log-barrier-{time.monotonic_ns()}"
    exchange(agent, request(agent, "GET", "/health", X_Request_Id=marker))
    wait_until(lambda: marker in agent.log_path.read_text(), timeout=timeout, what="the log barrier's line")
    return agent.log_path.read_text()


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
