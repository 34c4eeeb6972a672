"""Findings 7 and 9 of issue 11 (HTTP part): bad bodies and headers are 4xx, not 500s, and
JSON bodies are bounded per route and refused before a huge one is read or parsed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import RunningAgent, start_agent
from tests.displays import unused_display
from tests.raw_http import Answer, connect, exchange, read_answer, request
from tests.unit.test_exec import agent_env

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(
        agent_env(),
        tmp_path_factory.mktemp("edge"),
        "--display",
        unused_display(),
        "--max-body-bytes",
        str(64 * MIB),  # the old single ceiling: routes still apply their own
    )
    yield running
    running.stop()


def test_non_ascii_authorization_is_401(agent: RunningAgent) -> None:
    for value in (b"Bearer \xff\xfe", "Bearer tökén".encode(), b"\xc3\xa9 x", b"Bearer " + b"\x80" * 40):
        raw = request(agent, "GET", "/desktop/screen-size").replace(
            b"Connection: close", b"Authorization: " + value + b"\r\nConnection: close"
        )
        answer = exchange(agent, raw)
        assert answer.status == 401, (value, answer.body)
        assert answer.envelope()["code"] == "UNAUTHENTICATED"


def _post_json(agent: RunningAgent, path: str, body: bytes) -> Answer:
    return exchange(
        agent,
        request(
            agent, "POST", path, body, Content_Type="application/json", Authorization=f"Bearer {agent.token}"
        ),
    )


def test_deep_nesting_and_huge_integers_are_400(agent: RunningAgent) -> None:
    deep = b'{"command": "true", "env": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    answer = _post_json(agent, "/exec", deep)
    assert answer.status == 400, answer.body
    assert "deeper than" in str(answer.envelope()["message"])
    answer = _post_json(agent, "/actions", b'{"type": "move", "x": ' + b"9" * 5000 + b', "y": 1}')
    assert answer.status == 400, answer.body
    assert "5000 digits" in str(answer.envelope()["message"])
    # Brackets inside strings are text, not nesting.
    answer = _post_json(
        agent, "/exec", json.dumps({"command": "echo " + "[" * 500, "timeout_seconds": 5}).encode()
    )
    assert answer.status == 200, answer.body


def test_bodies_are_bounded_per_route(agent: RunningAgent) -> None:
    answer = _post_json(agent, "/desktop/type", json.dumps({"text": "x" * (5 * MIB)}).encode())
    assert answer.status == 413
    error = answer.envelope()
    assert error["code"] == "PAYLOAD_TOO_LARGE" and error["details"] == {"limit": 4 * MIB}
    assert "/desktop/type" in str(error["message"])
    answer = _post_json(agent, "/desktop/click", json.dumps({"x": 1, "y": 1, "pad": "x" * 300_000}).encode())
    assert answer.status == 413
    assert answer.envelope()["details"] == {"limit": 256 * 1024}


def test_a_63_mib_body_is_refused_without_holding_others(agent: RunningAgent) -> None:
    """Refused from its Content-Length (or as it passes the route's limit when chunked)."""
    big = b'{"command": "true", "stdin": "' + b"A" * (63 * MIB) + b'"}'
    for path in ("/desktop/type", "/batch"):
        answer = _post_json(agent, path, big)
        assert answer.status == 413, answer.body
    # Chunked (no Content-Length), sent while another client is served.
    results: dict[str, int] = {}

    def chunked_upload() -> None:
        with connect(agent) as sock:
            head = (
                f"POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {agent.token}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            sock.sendall(head.encode())
            try:
                for start in range(0, len(big), MIB):
                    piece = big[start : start + MIB]
                    sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                sock.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the agent answered and closed before the end: expected
            results["big"] = read_answer(sock).status

    sender = threading.Thread(target=chunked_upload)
    sender.start()
    with agent.client() as http:
        for _ in range(5):
            assert http.get("/health").status_code == 200
    sender.join(timeout=60)
    assert results.get("big") == 413
