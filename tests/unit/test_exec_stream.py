"""POST /exec/stream against a real agent: event order, SSE, timeouts, and disconnect-kills (ps)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningAgent, start_agent
from tests.displays import unused_display
from tests.unit.test_exec import agent_env, group_members, wait_gone


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(agent_env(), tmp_path_factory.mktemp("stream-agent"), "--display", unused_display())
    yield running
    running.stop()


def ndjson(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    with client.stream("POST", "/exec/stream", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.iter_lines() if line]


def test_events_come_in_order(client: httpx.Client) -> None:
    command = "for i in 1 2 3; do echo o$i; sleep 0.1; echo e$i >&2; sleep 0.1; done; exit 4"
    events = ndjson(client, {"command": command})
    assert events[0]["type"] == "start" and isinstance(events[0]["pid"], int)
    middle = [(e["type"], e["data"]) for e in events[1:-1]]
    assert middle == [
        ("stdout", "o1\n"),
        ("stderr", "e1\n"),
        ("stdout", "o2\n"),
        ("stderr", "e2\n"),
        ("stdout", "o3\n"),
        ("stderr", "e3\n"),
    ]
    last = events[-1]
    assert last["type"] == "exit" and last["exit_code"] == 4 and last["timed_out"] is False
    assert last["stdout_bytes"] == 9 and last["stderr_bytes"] == 9


def test_output_arrives_while_the_command_runs(client: httpx.Client) -> None:
    seen_at: list[float] = []
    started = time.monotonic()
    with client.stream(
        "POST", "/exec/stream", json={"command": "echo first; sleep 1; echo second"}
    ) as answer:
        for line in answer.iter_lines():
            if line and json.loads(line)["type"] == "stdout":
                seen_at.append(time.monotonic() - started)
    assert len(seen_at) == 2
    assert seen_at[0] < 0.7 and seen_at[1] >= 0.9


def test_server_sent_events(client: httpx.Client) -> None:
    headers = {"Accept": "text/event-stream"}
    with client.stream("POST", "/exec/stream", json={"command": "echo hi"}, headers=headers) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        text = answer.read().decode()
    blocks = [block for block in text.split("\n\n") if block.strip()]
    kinds = [block.splitlines()[0] for block in blocks]
    assert kinds == ["event: start", "event: stdout", "event: exit"]
    data = json.loads(blocks[1].splitlines()[1].removeprefix("data: "))
    assert data == {"type": "stdout", "data": "hi\n", "encoding": "utf-8"}


def test_binary_and_split_characters(client: httpx.Client) -> None:
    # A 4-byte character written in two halves arrives whole; bytes that are not UTF-8 as base64.
    command = "printf '\\xf0\\x9f'; sleep 0.2; printf '\\x8e\\x89'; sleep 0.2; printf '\\xff\\x00'"
    events = ndjson(client, {"command": command})
    chunks = [e for e in events if e["type"] == "stdout"]
    assert chunks[0] == {"type": "stdout", "data": "🎉", "encoding": "utf-8"}
    assert base64.b64decode(chunks[1]["data"]) == b"\xff\x00" and chunks[1]["encoding"] == "base64"


def test_timeout_in_a_stream_kills_the_group(client: httpx.Client) -> None:
    events = ndjson(client, {"command": "sleep 100 & sleep 100", "timeout_seconds": 0.5})
    assert events[-1]["type"] == "exit" and events[-1]["timed_out"] is True
    assert wait_gone(events[0]["pid"], timeout=0.5) == []


def test_cap_is_applied_only_when_asked(client: httpx.Client) -> None:
    events = ndjson(client, {"command": "head -c 3000000 /dev/zero | tr '\\0' x"})
    assert sum(len(e["data"]) for e in events if e["type"] == "stdout") == 3_000_000
    assert events[-1]["truncated"] is False and not events[-1]["truncated_streams"]["stdout"]
    events = ndjson(client, {"command": "head -c 3000 /dev/zero | tr '\\0' x", "max_output_length": 1000})
    assert sum(len(e["data"]) for e in events if e["type"] == "stdout") == 1000
    assert (
        events[-1]["truncated"] is True
        and events[-1]["truncated_streams"]["stdout"] is True
        and events[-1]["stdout_bytes"] == 3000
    )


@pytest.mark.parametrize("command", ["sleep 100 & sleep 100", "yes"])
def test_disconnect_kills_the_process_group(agent: RunningAgent, command: str) -> None:
    with agent.client() as http, http.stream("POST", "/exec/stream", json={"command": command}) as answer:
        lines = answer.iter_lines()  # held: dropping the iterator would close the connection
        first = json.loads(next(lines))
        pid = first["pid"]
        assert group_members(pid) != []
    # Leaving both blocks closed the connection mid-stream.
    assert wait_gone(pid, timeout=3.0) == []


def test_errors_before_the_stream_are_plain_json(client: httpx.Client) -> None:
    answer = client.post("/exec/stream", json={"command": "true", "cwd": "/no/such/dir"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "INVALID_ARGUMENT"
    events = ndjson(client, {"command": ["no-such-program-xyz"]})
    assert events[0] == {"type": "start", "pid": None}
    assert "not found" in events[1]["data"] and events[-1]["exit_code"] == 127
