"""POST /exec and /bash against a real agent process, observed with ps and the files commands write.

No display is needed: the agent serves exec without one. Each module starts its own agent so it
can choose the limits it tests.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import RunningAgent, start_agent
from tests.displays import unused_display
from tests.waiting import wait_until


def agent_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTER_AGENT_")}
    env.pop("DISPLAY", None)
    return env


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(
        agent_env(),
        tmp_path_factory.mktemp("exec-agent"),
        "--display",
        unused_display(),
        "--exec-max-processes",
        "128",
    )
    yield running
    running.stop()


def group_members(pgid: int) -> list[str]:
    """Every process (zombies included) in process group ``pgid``, as ps sees them."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat=,args="], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line.split()[1] == str(pgid)]


def wait_gone(pgid: int, timeout: float = 3.0) -> list[str]:
    """The members left of process group ``pgid``: none, or AssertionError after ``timeout``."""
    wait_until(lambda: not group_members(pgid), timeout=timeout, what=f"process group {pgid} to end")
    return []


def test_exit_code_and_stream_separation(client: httpx.Client) -> None:
    answer = client.post("/exec", json={"command": "echo out; echo err >&2; exit 3"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["stdout"] == "out\n"
    assert body["stderr"] == "err\n"
    assert body["exit_code"] == 3
    assert body["signal"] is None
    assert body["timed_out"] is False
    assert body["truncated"] is False and body["truncated_streams"] == {"stdout": False, "stderr": False}
    assert body["encoding"] == {"stdout": "utf-8", "stderr": "utf-8"}
    assert body["duration_ms"] > 0


def test_argv_list_runs_without_a_shell(client: httpx.Client) -> None:
    body = client.post("/exec", json={"command": ["printf", "%s|", "a b", "$HOME", ";ls"]}).json()
    assert body["stdout"] == "a b|$HOME|;ls|"
    assert body["exit_code"] == 0


def test_missing_program_is_127_not_500(client: httpx.Client) -> None:
    answer = client.post("/exec", json={"command": ["no-such-program-xyz", "--help"]})
    assert answer.status_code == 200
    body = answer.json()
    assert body["exit_code"] == 127
    assert "no-such-program-xyz" in body["stderr"] and "not found" in body["stderr"]
    body = client.post("/exec", json={"command": "no-such-program-xyz"}).json()
    assert body["exit_code"] == 127 and "not found" in body["stderr"]


def test_stdin_cwd_and_env(client: httpx.Client, tmp_path: Path) -> None:
    body = client.post("/exec", json={"command": "tr a-z A-Z", "stdin": "hello\nworld\n"}).json()
    assert body["stdout"] == "HELLO\nWORLD\n"
    raw = bytes(range(256))
    body = client.post(
        "/exec",
        json={"command": ["sha256sum"], "stdin": base64.b64encode(raw).decode(), "stdin_encoding": "base64"},
    ).json()
    assert body["stdout"].split()[0] == hashlib.sha256(raw).hexdigest()
    body = client.post("/exec", json={"command": "pwd > here.txt; pwd", "cwd": str(tmp_path)}).json()
    assert body["stdout"].strip() == str(tmp_path)
    assert (tmp_path / "here.txt").read_text().strip() == str(tmp_path)
    body = client.post(
        "/exec",
        json={"command": 'echo "$GREETING|${PATH:+path}|${HOME:+home}"', "env": {"GREETING": "hi there"}},
    ).json()
    assert body["stdout"] == "hi there|path|home\n"  # merged over the session's environment
    body = client.post("/exec", json={"command": 'echo "[${LANG-unset}]"', "env": {"LANG": None}}).json()
    assert body["stdout"] == "[unset]\n"


def test_bad_cwd_is_a_400(client: httpx.Client, tmp_path: Path) -> None:
    answer = client.post("/exec", json={"command": "true", "cwd": str(tmp_path / "missing")})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert "cwd" in answer.json()["error"]["message"]


def test_unicode_and_binary_output(client: httpx.Client, tmp_path: Path) -> None:
    text = "héllo wörld ✓ 日本語 🎉"
    body = client.post("/exec", json={"command": ["printf", "%s", text]}).json()
    assert body["stdout"] == text and body["encoding"]["stdout"] == "utf-8"
    blob = os.urandom(4096) + b"\xff\xfe"
    (tmp_path / "blob").write_bytes(blob)
    body = client.post("/exec", json={"command": ["cat", str(tmp_path / "blob")]}).json()
    assert body["encoding"] == {"stdout": "base64", "stderr": "utf-8"}
    assert base64.b64decode(body["stdout"]) == blob


def test_truncation_flags_at_the_cap(client: httpx.Client) -> None:
    body = client.post(
        "/exec",
        json={"command": "head -c 5000 /dev/zero | tr '\\0' a; echo -n bb >&2", "max_output_length": 1000},
    ).json()
    assert body["stdout"] == "a" * 1000
    assert body["stderr"] == "bb"
    assert body["truncated"] is True and body["truncated_streams"] == {"stdout": True, "stderr": False}
    body = client.post("/exec", json={"command": "printf aaaa", "max_output_length": 4}).json()
    assert (
        body["stdout"] == "aaaa"
        and body["truncated_streams"]["stdout"] is False
        and body["truncated"] is False
    )
    # A cut inside a multi-byte character drops the half, so the rest stays text.
    body = client.post("/exec", json={"command": ["printf", "%s", "ééé"], "max_output_length": 3}).json()
    assert (
        body["stdout"] == "é"
        and body["encoding"]["stdout"] == "utf-8"
        and body["truncated_streams"]["stdout"]
    )


def test_timeout_kills_the_whole_group(client: httpx.Client) -> None:
    started = time.monotonic()
    body = client.post("/exec", json={"command": "sleep 100 & sleep 100", "timeout_seconds": 1}).json()
    elapsed = time.monotonic() - started
    assert body["timed_out"] is True
    assert body["signal"] == "SIGTERM" and body["exit_code"] == 143
    assert elapsed < 2.0  # timeout + 1 s
    assert wait_gone(body["pid"], timeout=0.5) == []


def test_timeout_kills_children_that_ignore_sigterm(client: httpx.Client) -> None:
    started = time.monotonic()
    command = "trap '' TERM; sleep 100 & sleep 101 & wait"
    body = client.post("/exec", json={"command": command, "timeout_seconds": 0.5}).json()
    elapsed = time.monotonic() - started
    assert body["timed_out"] is True and body["signal"] == "SIGKILL"
    assert elapsed < 0.5 + 1.0 + 0.8  # timeout + grace + slack
    assert wait_gone(body["pid"], timeout=0.5) == []


def test_background_leftover_does_not_hold_the_answer(client: httpx.Client, tmp_path: Path) -> None:
    marker = tmp_path / "later"
    started = time.monotonic()
    body = client.post("/exec", json={"command": f"(sleep 1; touch {marker}) & echo started"}).json()
    assert time.monotonic() - started < 1.0
    assert body["stdout"] == "started\n"
    # The leftover kept running and was not killed by SIGPIPE.
    wait_until(marker.exists, what="the background leftover to touch its marker")


def test_orphans_are_reaped(client: httpx.Client, agent: RunningAgent) -> None:
    """Orphans are re-parented to the agent (a subreaper), which reaps them: a plain background
    child at once, a session leader (which could be a launched app) after a few seconds."""
    me = psutil.Process(agent.process.pid)
    command = "(sleep 1.5 >/dev/null 2>&1 &); (setsid sleep 1.5 >/dev/null 2>&1 &); echo ok"
    body = client.post("/exec", json={"command": command}).json()
    assert body["stdout"] == "ok\n"

    # Both become children of the agent (setsid(1) may not have exec'd sleep yet).
    def two_orphans() -> list[psutil.Process] | None:
        found = [c for c in me.children() if c.name() == "sleep"]
        return found if len(found) == 2 else None

    orphans = wait_until(
        two_orphans,
        timeout=1.0,
        what="two orphaned sleeps re-parented to the agent",
    )
    wait_until(  # a zombie still "runs" for psutil
        lambda: not [(c.pid, c.status()) for c in orphans if c.is_running()],
        timeout=12,
        what="the orphans reaped",
    )


def test_bash_script(client: httpx.Client) -> None:
    script = 'set -e\nx=2\nfor i in 1 2 3; do\n  echo "line $i"\ndone\necho $((x * 21))\n'
    body = client.post("/bash", json={"script": script}).json()
    assert body["stdout"] == "line 1\nline 2\nline 3\n42\n"
    assert (
        client.post("/bash", json={"script": "false\necho not reached", "env": {}}).json()["exit_code"] == 0
    )
    body = client.post("/bash", json={"script": "set -e\nfalse\necho not reached"}).json()
    assert body["exit_code"] == 1 and body["stdout"] == ""


def test_exec_through_actions_and_batch(client: httpx.Client) -> None:
    answer = client.post("/actions", json={"type": "exec", "command": "echo via-actions"}).json()
    assert answer["success"] is True and answer["result"]["stdout"] == "via-actions\n"
    answer = client.post(
        "/batch",
        json={
            "actions": [{"type": "exec", "command": ["echo", "one"]}, {"type": "bash", "script": "echo two"}]
        },
    ).json()
    assert [step["result"]["stdout"] for step in answer["results"]] == ["one\n", "two\n"]


def test_bad_requests(client: httpx.Client) -> None:
    bodies: list[dict[str, object]] = [
        {},
        {"command": []},
        {"command": ""},
        {"command": "x", "timeout_seconds": 0},
        {"command": 5},
    ]
    for body in bodies:
        answer = client.post("/exec", json=body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["code"] == "INVALID_ARGUMENT"
    answer = client.post("/exec", json={"command": "x", "stdin": "%%%", "stdin_encoding": "base64"})
    assert answer.status_code == 400


def test_hundred_concurrent_calls_all_correct(agent: RunningAgent) -> None:
    def one(i: int) -> tuple[int, dict[str, object]]:
        with agent.client() as http:
            return i, http.post("/exec", json={"command": f"sleep 0.2; echo {i}; echo e{i} >&2"}).json()

    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        results = list(pool.map(one, range(100)))
    for i, body in results:
        assert body["stdout"] == f"{i}\n" and body["stderr"] == f"e{i}\n" and body["exit_code"] == 0


def test_memory_stays_flat_while_yes_runs(client: httpx.Client, agent: RunningAgent) -> None:
    proc = psutil.Process(agent.process.pid)
    client.post("/exec", json={"command": "true"})
    baseline = proc.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.05)  # pacing: a memory sample every 50 ms

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        body = client.post("/exec", json={"command": ["yes"], "timeout_seconds": 10}, timeout=30).json()
    finally:
        done.set()
        sampler.join()
    assert body["timed_out"] is True
    assert body["truncated"] is True and body["truncated_streams"]["stdout"] is True
    assert len(body["stdout"]) == 1 << 20
    assert peak - baseline < 40 * 1024 * 1024, f"grew by {(peak - baseline) >> 20} MiB"


@pytest.fixture(scope="module")
def small_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(
        agent_env(),
        tmp_path_factory.mktemp("small-agent"),
        "--display",
        unused_display(),
        "--exec-max-processes",
        "2",
    )
    yield running
    running.stop()


def test_429_past_the_process_limit(small_agent: RunningAgent) -> None:
    with small_agent.client() as http:
        ids = [http.post("/processes", json={"command": ["sleep", "30"]}).json()["id"] for _ in range(2)]
        answer = http.post("/exec", json={"command": "true"})
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["error"]["code"] == "TOO_MANY_REQUESTS"
        assert http.post("/processes", json={"command": "true"}).status_code == 429
        for process_id in ids:
            http.post(f"/processes/{process_id}/signal", json={"signal": "KILL"})
        answer = wait_until(
            lambda: (reply := http.post("/exec", json={"command": "echo ok"})).status_code != 429 and reply,
            timeout=3,
            what="a slot to free up after the kills",
        )
        assert answer.status_code == 200 and answer.json()["stdout"] == "ok\n"


def test_strings_exec_cannot_take_are_400(client: httpx.Client) -> None:
    for body in (
        {"command": ["echo", "a\u0000b"]},
        {"command": "echo a\u0000b"},
        {"command": "true", "cwd": "/tmp\u0000x"},
        {"command": "true", "env": {"A=B": "x"}},
        {"command": "true", "env": {"": "x"}},
        {"command": "true", "env": {"A": "x\u0000"}},
        {"command": "x" * (200 * 1024)},
    ):
        answer = client.post("/exec", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"]["code"] == "INVALID_ARGUMENT"


def command_fds(pid: int) -> int:
    """The agent's pipes and pidfds: what running commands costs it (its sockets come and go with
    readiness probes of the absent display, so they are not counted)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("pipe:") or target == "anon_inode:[pidfd]":
            count += 1
    return count


def test_no_descriptor_or_process_leaks(client: httpx.Client, agent: RunningAgent) -> None:
    me = psutil.Process(agent.process.pid)
    client.post("/exec", json={"command": "true"})
    fds_before = command_fds(me.pid)
    for i in range(30):
        client.post("/exec", json={"command": ["echo", str(i)], "stdin": "x"})
        client.post("/exec", json={"command": "no-such-program-xyz"})
        client.post("/exec", json={"command": "sleep 5", "timeout_seconds": 0.05})
        with client.stream("POST", "/exec/stream", json={"command": "echo s"}) as answer:
            answer.read()
        process_id = client.post("/processes", json={"command": "cat"}).json()["id"]
        client.post(f"/processes/{process_id}/stdin", json={"data": "x", "eof": True})
    wait_until(lambda: command_fds(me.pid) <= fds_before, what="the commands' descriptors to be closed")
    assert [c for c in me.children() if c.name() in ("sleep", "echo", "bash", "cat")] == []


def test_seed_debug_action_shape(client: httpx.Client, tmp_path: Path) -> None:
    debug = {"command": "pwd; echo $X", "cwd": str(tmp_path), "env": {"X": "y"}, "stream": False}
    answer = client.post("/actions", json={"type": "debug", "debug": debug}).json()
    assert answer["result"]["stdout"] == f"{tmp_path}\ny\n" and answer["result"]["exit_code"] == 0
    steps = client.post(
        "/batch", json={"actions": [{"type": "debug", "debug": {"command": "exit 2"}}]}
    ).json()
    assert steps["results"][0]["result"]["exit_code"] == 2
