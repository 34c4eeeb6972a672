"""Commands are bounded and die with their client (issue 11, findings 6, 7 and 8), against a real
agent process, observed in /proc and ps rather than in the agent's answers."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import Config, ConfigError, load
from agent.exec.cgroups import CommandCgroup, Confiner, Limits, _beneath
from agent.exec.runner import CommandSpec, bash_argv
from agent.exec.service import ExecService
from tests.conftest import RunningAgent, start_agent
from tests.displays import unused_display
from tests.raw_http import send_raw
from tests.unit.test_exec import agent_env
from tests.unit.test_processes import exited
from tests.waiting import wait_until

MAX_TASKS = 40
MEMORY_MAX_MIB = 64


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(
        agent_env(),
        tmp_path_factory.mktemp("limits-agent"),
        "--display",
        unused_display(),
        "--exec-max-tasks",
        str(MAX_TASKS),
        "--exec-memory-max",
        f"{MEMORY_MAX_MIB}M",
    )
    yield running
    running.stop()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie, per /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def read_pid(path: Path, timeout: float = 10) -> int:
    def written() -> str:
        text = path.read_text().strip() if path.exists() else ""
        return text if text.isdigit() else ""

    return int(wait_until(written, timeout=timeout, what=f"a pid written to {path}"))


def wait_dead(pids: list[int], timeout: float = 5) -> list[int]:
    """The pids still alive: none, or AssertionError (naming them) after ``timeout``."""
    wait_until(lambda: not [pid for pid in pids if alive(pid)], timeout=timeout, what=f"{pids} to end")
    return []


@pytest.mark.parametrize("route", ["/exec", "/bash", "/actions", "/batch"])
def test_a_command_whose_client_left_is_killed(agent: RunningAgent, tmp_path: Path, route: str) -> None:
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}; exec sleep 300"
    body: dict[str, object] = {"script": script} if route == "/bash" else {"command": script}
    body["timeout_seconds"] = 600
    if route in {"/actions", "/batch"}:
        body["type"] = "exec"
    if route == "/batch":
        body = {"actions": [body]}
    sock = send_raw(agent, route, body)
    try:
        pid = read_pid(pidfile)
        assert alive(pid)
    finally:
        sock.close()
    assert wait_dead([pid]) == []


def processes_running(argv: list[str]) -> list[int]:
    """Live processes whose command line is exactly ``argv``, per /proc."""
    wanted = "\0".join(argv).encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_bytes() == wanted and alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def session_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2 :].split()[3])


def test_a_setsid_child_dies_with_its_command_on_timeout(agent: RunningAgent, tmp_path: Path) -> None:
    pidfile = tmp_path / "escaped"
    command = f"setsid bash -c 'sleep 300 & echo $! > {pidfile}'; echo $$ > {tmp_path}/shell; sleep 100"
    with agent.client() as http, concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(http.post, "/exec", json={"command": command, "timeout_seconds": 3})
        escaped = read_pid(pidfile)
        shell = read_pid(tmp_path / "shell")
        # It really left the command's session and process group (what a group kill reaches).
        assert alive(escaped) and session_of(escaped) != session_of(shell)
        result = answer.result().json()
    assert result["timed_out"] is True
    assert wait_dead([escaped, shell]) == []


def test_a_fork_bomb_is_capped_and_the_agent_stays_responsive(agent: RunningAgent) -> None:
    sleeper = ["sleep", f"299.{os.getpid()}"]  # this run's own: another run's bomb is not counted
    command = f"for i in $(seq 1000); do {' '.join(sleeper)} & done; wait"
    most = 0
    with agent.client() as http, concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(http.post, "/exec", json={"command": command, "timeout_seconds": 6})
        while not answer.done():
            most = max(most, len(processes_running(sleeper)))
            assert http.get("/health", timeout=10).status_code == 200
            time.sleep(0.1)  # pacing: a sample of the process count every 0.1 s while it runs
        result = answer.result().json()
    assert result["timed_out"] is True
    assert "Resource temporarily unavailable" in result["stderr"]  # bash's fork(2) got EAGAIN
    assert 0 < most < MAX_TASKS
    assert wait_dead(processes_running(sleeper)) == []


def test_a_memory_hog_is_capped(agent: RunningAgent) -> None:
    hog = f"import sys; block = bytearray({4 * MEMORY_MAX_MIB} << 20); print('allocated', len(block))"
    with agent.client() as http:
        result = http.post("/exec", json={"command": ["python3", "-c", hog], "timeout_seconds": 60}).json()
        assert "allocated" not in result["stdout"]
        assert result["signal"] == "SIGKILL" and result["timed_out"] is False  # the kernel's OOM kill
        small = f"block = bytearray({MEMORY_MAX_MIB // 4} << 20); print('allocated', len(block))"
        fine = http.post("/exec", json={"command": ["python3", "-c", small]}).json()
        assert fine["exit_code"] == 0 and "allocated" in fine["stdout"]


async def test_without_cgroups_the_kill_sweeps_setsid_children(tmp_path: Path) -> None:
    """Where no cgroup is writable, the command's descendants are found by their marker variable."""
    service = ExecService(Config(insecure_no_auth=True))
    await service.confiner.close()  # the machine's own kind; this test wants none at all
    service.confiner = Confiner.detect(Limits(max_tasks=10, memory_max=0), root=tmp_path / "no-cgroupfs")
    assert service.confiner.kind == "none"
    await service.start()
    try:
        pidfile = tmp_path / "escaped"
        command = f"setsid bash -c 'sleep 300 & echo $! > {pidfile}'; sleep 100"
        result = await service.run(CommandSpec(argv=bash_argv(command), timeout=1))
        assert result.exit.timed_out
        assert wait_dead([read_pid(pidfile)]) == []
    finally:
        await service.close()


# ----- finding 7: what background processes may make the agent hold ---------------------------

STDIN_MAX = 1 << 20
OUTPUT_MAX = 16 << 20


@pytest.fixture(scope="module")
def process_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(
        agent_env(),
        tmp_path_factory.mktemp("process-limits-agent"),
        "--display",
        unused_display(),
        "--processes-stdin-max-bytes",
        str(STDIN_MAX),
        "--processes-output-max-bytes",
        str(OUTPUT_MAX),
    )
    yield running
    running.stop()


def wait_exited(http: httpx.Client, process_id: str, timeout: float = 30) -> dict[str, Any]:
    return wait_until(lambda: exited(http, process_id), timeout=timeout, what=f"process {process_id} to exit")


def test_stdin_is_bounded_and_a_refused_write_is_never_delivered(
    process_agent: RunningAgent, tmp_path: Path
) -> None:
    go, out = tmp_path / "go", tmp_path / "out"
    # Reads nothing until `go` exists, then copies its stdin to `out`.
    command = f"while [ ! -e {go} ]; do sleep 0.05; done; exec cat > {out}"
    first, second = "a" * (STDIN_MAX * 3 // 4), "b" * (STDIN_MAX // 2)
    with process_agent.client() as http:
        proc = http.post("/processes", json={"command": command}).json()
        url = f"/processes/{proc['id']}/stdin"
        too_big = http.post(url, json={"data": "x" * (STDIN_MAX + 1)})
        assert too_big.status_code == 413
        assert "processes_stdin_max_bytes" in too_big.json()["error"]["message"]
        assert http.post(url, json={"data": first}).status_code == 200
        full = http.post(url, json={"data": second})
        assert full.status_code == 409
        assert "processes_stdin_max_bytes" in full.json()["error"]["message"]
        go.touch()  # now it reads: the refused write must not arrive, the retry exactly once
        answer = wait_until(
            lambda: (reply := http.post(url, json={"data": second})).status_code != 409 and reply,
            timeout=10,
            what="the process to read its stdin",
        )
        assert answer.status_code == 200
        assert http.post(url, json={"eof": True}).status_code == 200
        assert wait_exited(http, proc["id"])["exit_code"] == 0
    assert out.read_text() == first + second


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_retained_output_is_bounded_across_processes(process_agent: RunningAgent) -> None:
    size = 32 << 20  # x 5 processes: 160 MiB of output, 10 times the agent's budget
    agent_pid = process_agent.process.pid
    with process_agent.client() as http:
        before = rss(agent_pid)
        ids = []
        for _ in range(5):
            body = {"command": f"head -c {size} /dev/zero | tr '\\0' a", "max_output_length": 64 << 20}
            ids.append(http.post("/processes", json=body).json()["id"])
            assert wait_exited(http, ids[-1])["exit_code"] == 0
        grown = rss(agent_pid) - before
        held = []
        for process_id in ids:
            with http.stream("GET", f"/processes/{process_id}/output", params={"follow": "false"}) as answer:
                events = [json.loads(line) for line in answer.iter_lines() if line]
            held.append(sum(len(e["data"]) for e in events if e["type"] == "stdout"))
        assert http.get(f"/processes/{ids[0]}").json()["stdout_bytes"] == size  # still listed
    assert sum(held) <= OUTPUT_MAX
    assert held[-1] == OUTPUT_MAX and held[0] == 0  # the oldest output went first
    assert grown < 4 * OUTPUT_MAX, f"the agent grew by {grown >> 20} MiB"


async def test_a_cgroup_the_kernel_refuses_turns_cgroups_off_not_the_command(tmp_path: Path) -> None:
    """If joining fails where detection said it would work, commands still run (with the sweep).

    As the desktop user (the join is then the agent's preexec_fn, the path the fleet takes)."""
    if os.geteuid() != 0:
        pytest.skip("switching to the desktop user needs root")
    service = ExecService(Config(insecure_no_auth=True, desktop_user="nobody"))
    confiner = service.confiner
    if confiner.kind == "none":
        pytest.skip("no writable cgroup here")
    create = confiner.create

    def vanishing() -> CommandCgroup | None:
        cgroup = create()
        if cgroup is not None:
            cgroup.remove()  # gone before the child can join it
        return cgroup

    confiner.create = vanishing  # type: ignore[method-assign]
    await service.start()
    try:
        spec = CommandSpec(argv=bash_argv("echo $COMPUTER_AGENT_COMMAND"), cwd="/tmp")
        result = await service.run(spec)
        assert result.exit.exit_code == 0 and result.stdout.strip()  # ran, with the sweep's marker
        assert str(confiner.kind) == "none"  # and it says so (in the log, once)
    finally:
        await service.close()


async def test_as_the_desktop_user_commands_join_their_cgroup_before_exec() -> None:
    """The fleet's path (root agent, desktop user): the join is a preexec_fn; /proc shows the result."""
    if os.geteuid() != 0:
        pytest.skip("switching to the desktop user needs root")
    service = ExecService(Config(insecure_no_auth=True, desktop_user="nobody"))
    if service.confiner.kind == "none":
        pytest.skip("no writable cgroup here")
    await service.start()
    shared = Path(tempfile.mkdtemp(prefix="agent-cgroup-test-"))  # the desktop user writes here
    try:
        shared.chmod(0o777)
        pidfile = shared / "escaped"
        command = f"cat /proc/self/cgroup; setsid bash -c 'sleep 300 & echo $! > {pidfile}'; sleep 100"
        result = await service.run(CommandSpec(argv=bash_argv(command), cwd="/tmp", timeout=2))
        cgroups = result.stdout.decode()
        assert result.exit.timed_out and "/computer-agent." in cgroups and "/cmd-" in cgroups
        assert wait_dead([read_pid(pidfile)]) == []
    finally:
        await service.close()
        shutil.rmtree(shared)


def test_sizes_and_mount_roots_parse() -> None:
    flags = {"insecure_no_auth": "true", "exec_memory_max": "512M", "processes_stdin_max_bytes": "2GiB"}
    config = load(flags, environ={})
    assert config.exec_memory_max == 512 << 20 and config.processes_stdin_max_bytes == 2 << 30
    with pytest.raises(ConfigError, match="exec-memory-max"):
        load({**flags, "exec_memory_max": "lots"}, environ={})
    # A container's mount shows its own part of the tree: its cgroup is the mount itself.
    assert _beneath(Path("/sys/fs/cgroup/pids"), "/docker/abc", "/docker/abc") == Path("/sys/fs/cgroup/pids")
    assert _beneath(Path("/m"), "/", "/system.slice/x.service") == Path("/m/system.slice/x.service")


async def test_the_janitor_leaves_a_cgroup_its_command_has_not_joined_yet() -> None:
    """A cgroup is empty between its mkdir and the child's join: the janitor must not remove it
    then (under load a command answered exit 125, 'cgroup.procs: Directory nonexistent')."""
    service = ExecService(Config(insecure_no_auth=True))
    confiner = service.confiner
    if confiner.kind == "none":
        pytest.skip("no writable cgroup here")
    cgroup = confiner.create()
    assert cgroup is not None
    try:
        confiner.collect()  # a janitor round between the mkdir and the join
        assert all(directory.is_dir() for directory in cgroup.dirs)
        cgroup.settled = True  # the leader exited, nothing joined: now it goes
        confiner.collect()
        assert not any(directory.exists() for directory in cgroup.dirs)
    finally:
        cgroup.remove()
        await service.close()


async def test_a_v2_hierarchy_without_controllers_still_ends_the_whole_command(tmp_path: Path) -> None:
    """A hybrid host's delegated /sys/fs/cgroup/unified has no pids or memory controller: commands
    still get a cgroup there (no limits), and a timeout kills a setsid child through it."""
    unified = Path("/sys/fs/cgroup/unified")
    if not (unified / "cgroup.procs").exists() or {"pids", "memory"} <= set(
        (unified / "cgroup.controllers").read_text().split()
    ):
        pytest.skip("no cgroup v2 hierarchy without the pids and memory controllers here")
    service = ExecService(Config(insecure_no_auth=True))
    await service.confiner.close()
    service.confiner = Confiner.detect(Limits(max_tasks=10, memory_max=0), root=unified)
    assert (service.confiner.kind, service.confiner.limited) == ("cgroup2", False)
    await service.start()
    try:
        pidfile = tmp_path / "escaped"
        command = f"cat /proc/self/cgroup; setsid bash -c 'sleep 300 & echo $! > {pidfile}'; sleep 100"
        result = await service.run(CommandSpec(argv=bash_argv(command), timeout=1))
        assert result.exit.timed_out
        assert "0::/computer-agent." in result.stdout.decode() and "/cmd-" in result.stdout.decode()
        assert wait_dead([read_pid(pidfile)]) == []
    finally:
        await service.close()
