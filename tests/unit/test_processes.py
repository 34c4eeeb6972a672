"""Background processes (/processes/*) against a real agent, observed with ps and files on disk."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningAgent, start_agent
from tests.displays import unused_display
from tests.unit.test_exec import agent_env, group_members, wait_gone
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(
        agent_env(),
        tmp_path_factory.mktemp("proc-agent"),
        "--display",
        unused_display(),
        "--processes-keep-count",
        "3",
    )
    yield running
    running.stop()


def start(client: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = client.post("/processes", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def exited(client: httpx.Client, process_id: str) -> dict[str, Any] | None:
    info = dict(client.get(f"/processes/{process_id}").json())
    return info if info["state"] == "exited" else None


def wait_exited(client: httpx.Client, process_id: str, timeout: float = 5.0) -> dict[str, Any]:
    return wait_until(
        lambda: exited(client, process_id), timeout=timeout, what=f"process {process_id} to exit"
    )


def output(client: httpx.Client, process_id: str, **params: Any) -> list[dict[str, Any]]:
    with client.stream("GET", f"/processes/{process_id}/output", params=params) as answer:
        assert answer.status_code == 200
        return [json.loads(line) for line in answer.iter_lines() if line]


def test_start_feed_stdin_and_read_back(client: httpx.Client, tmp_path: Path) -> None:
    target = tmp_path / "copy.txt"
    info = start(client, command=f"tee {target}; echo done >&2")
    assert info["state"] == "running" and isinstance(info["pid"], int) and info["stdin_open"]
    assert client.post(f"/processes/{info['id']}/stdin", json={"data": "hello\n"}).json() == {"success": True}
    assert client.post(
        f"/processes/{info['id']}/stdin", json={"data": "d29ybGQK", "encoding": "base64", "eof": True}
    )
    final = wait_exited(client, info["id"])
    assert final["state"] == "exited" and final["exit_code"] == 0
    assert target.read_text() == "hello\nworld\n"
    assert final["stdout_tail"] == "hello\nworld\n" and final["stderr_tail"] == "done\n"
    assert final["stdout_bytes"] == 12 and final["stderr_bytes"] == 5 and final["output_offset"] == 17
    answer = client.post(f"/processes/{info['id']}/stdin", json={"data": "late"})
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "PROCESS_STATE_CONFLICT"


def test_output_is_resumable_from_an_offset(client: httpx.Client) -> None:
    info = start(client, command="printf one; sleep 0.1; printf two >&2; sleep 0.1; printf three")
    wait_exited(client, info["id"])
    events = output(client, info["id"])
    chunks = [(e["type"], e["data"], e["offset"]) for e in events if e["type"] in ("stdout", "stderr")]
    assert "".join(data for _, data, _ in chunks) == "onetwothree"
    assert events[-1]["type"] == "exit" and events[-1]["offset"] == 11
    events = output(client, info["id"], offset=4)
    assert "".join(e["data"] for e in events if e["type"] != "exit") == "wothree"
    assert events[0]["offset"] == 4


def test_follow_streams_until_exit(client: httpx.Client) -> None:
    info = start(client, command="for i in 1 2 3; do echo $i; sleep 0.2; done")
    started = time.monotonic()
    events = output(client, info["id"])
    assert time.monotonic() - started > 0.4  # it waited for the output as it came
    assert "".join(e["data"] for e in events if e["type"] == "stdout") == "1\n2\n3\n"
    assert events[-1]["type"] == "exit" and events[-1]["exit_code"] == 0
    events = output(client, start(client, command="sleep 5")["id"], follow="false")
    assert events == []  # nothing yet, and no waiting


def test_dropped_output_is_reported(client: httpx.Client) -> None:
    info = start(client, command="head -c 100 /dev/zero | tr '\\0' x", max_output_length=10)
    wait_exited(client, info["id"])
    events = output(client, info["id"], offset=0)
    assert events[0] == {"type": "dropped", "from": 0, "to": 90}
    assert events[1]["data"] == "x" * 10 and events[1]["offset"] == 90


def test_signal_ends_the_whole_group(client: httpx.Client) -> None:
    info = start(client, command="sleep 100 & sleep 100")
    pid = info["pid"]
    wait_until(lambda: len(group_members(pid)) == 3, timeout=2, what="bash and two sleeps in the group")
    assert client.post(f"/processes/{info['id']}/signal", json={"signal": "SIGTERM"}).status_code == 200
    final = wait_exited(client, info["id"])
    assert final["signal"] == "SIGTERM" and final["exit_code"] == 143
    assert wait_gone(pid) == []
    assert client.post(f"/processes/{info['id']}/signal", json={"signal": "TERM"}).status_code == 409


def test_signal_leader_only(client: httpx.Client) -> None:
    info = start(
        client, command=["sh", "-c", "trap 'echo got-usr1; exit 7' USR1; while :; do sleep 0.05; done"]
    )
    # The trap is set once the loop runs: a sleep is the shell's child.
    wait_until(lambda: len(group_members(info["pid"])) >= 2, what="the shell to reach its loop")
    client.post(f"/processes/{info['id']}/signal", json={"signal": 10, "group": False})
    final = wait_exited(client, info["id"])
    assert final["exit_code"] == 7 and final["stdout_tail"] == "got-usr1\n"
    assert wait_gone(info["pid"]) == []


def test_timeout_for_background_process(client: httpx.Client) -> None:
    info = start(client, command="sleep 100", timeout_seconds=0.3)
    final = wait_exited(client, info["id"], timeout=3)
    assert final["timed_out"] is True and final["signal"] == "SIGTERM"


def test_missing_program_is_an_exited_process(client: httpx.Client) -> None:
    info = start(client, command=["no-such-program-xyz"])
    assert info["state"] == "exited" and info["exit_code"] == 127 and info["pid"] is None
    assert "not found" in client.get(f"/processes/{info['id']}").json()["stderr_tail"]


def test_errors(client: httpx.Client) -> None:
    assert client.get("/processes/nope").status_code == 404
    assert client.get("/processes/nope/output").status_code == 404
    assert client.post("/processes/nope/signal", json={}).status_code == 404
    info = start(client, command="sleep 5")
    answer = client.post(f"/processes/{info['id']}/signal", json={"signal": "NOPE"})
    assert answer.status_code == 400 and "NOPE" in answer.json()["error"]["message"]
    answer = client.post(f"/processes/{info['id']}/stdin", json={"data": "%%", "encoding": "base64"})
    assert answer.status_code == 400
    assert client.get(f"/processes/{info['id']}/output", params={"offset": "-1"}).status_code == 400
    client.post(f"/processes/{info['id']}/signal", json={"signal": "KILL"})


def test_finished_processes_are_kept_within_the_count(client: httpx.Client) -> None:
    ids = [start(client, command=f"echo {i}")["id"] for i in range(6)]

    def exited_or_pruned(process_id: str) -> bool:  # starting prunes
        answer = client.get(f"/processes/{process_id}")
        return answer.status_code == 404 or answer.json()["state"] == "exited"

    wait_until(lambda: all(exited_or_pruned(process_id) for process_id in ids), what="all six to exit")
    start(client, command="true")  # starting prunes
    listed = {p["id"] for p in client.get("/processes").json()["processes"] if p["state"] == "exited"}
    assert len(listed) <= 3
    assert ids[0] not in listed and client.get(f"/processes/{ids[0]}").status_code == 404


def test_output_as_server_sent_events_resumes_from_last_event_id(client: httpx.Client) -> None:
    info = start(client, command="printf abc; sleep 0.1; printf def")
    wait_exited(client, info["id"])
    headers = {"Accept": "text/event-stream"}
    text = client.get(f"/processes/{info['id']}/output", headers=headers).text
    blocks = [block.splitlines() for block in text.split("\n\n") if block.strip()]
    assert [lines[1] for lines in blocks] == ["event: stdout", "event: stdout", "event: exit"]
    assert [lines[0] for lines in blocks[:2]] == ["id: 3", "id: 6"]  # the offset after each chunk
    text = client.get(f"/processes/{info['id']}/output", headers={**headers, "Last-Event-ID": "3"}).text
    assert '"data":"def"' in text and '"data":"abc"' not in text
