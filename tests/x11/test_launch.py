"""Launching apps: detached, as the desktop user, shell-free, logged, reaped, and restart-proof."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import httpx
import psutil
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, start_agent
from tests.waiting import wait_until
from tests.x11.windowing import observe, wmctrl


def _kill(pid: int) -> None:
    """End a launched app and what it started (a shell's sleep outlives the shell's SIGTERM)."""
    try:
        proc = psutil.Process(pid)
        family = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    psutil.wait_procs(family, timeout=5)


def test_launch_with_wait_for_window(desktop: DevDesktop, client: httpx.Client) -> None:
    answer = client.post(
        "/desktop/launch", json={"app": "xterm -T 'launched ✓' -e 'sleep 60'", "wait_for_window": True}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    pid, window = body["pid"], int(body["window_id"], 16)
    try:
        assert body["success"] is True
        assert wmctrl(desktop)[window][0] == pid  # the window is that process's, per wmctrl
        proc = psutil.Process(pid)
        assert proc.cmdline() == ["xterm", "-T", "launched ✓", "-e", "sleep 60"]
        assert proc.username() == psutil.Process().username()
        assert os.getsid(pid) == pid  # the leader of its own session: detached from the agent
        assert proc.environ()["DISPLAY"] == desktop.display
        assert Path(body["log_path"]).is_file()
    finally:
        _kill(pid)


def test_no_shell_is_involved_and_output_goes_to_the_log(client: httpx.Client, tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    app = f"echo $(touch {marker}) ; touch {marker} && `id` | cat"
    body = client.post("/desktop/launch", json={"app": app}).json()
    log = Path(body["log_path"])
    wait_until(lambda: log.read_text().strip() != "", what="echo to write its log")
    # echo got the shell syntax as plain arguments and printed them back.
    assert log.read_text() == f"$(touch {marker}) ; touch {marker} && `id` | cat\n"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("app", "status", "fragment"),
    [
        ("no-such-program-xyz --flag", 404, "no program named 'no-such-program-xyz'"),
        ("/nonexistent/bin/app", 404, "no program at /nonexistent/bin/app"),
        ("xterm -T 'unbalanced", 400, "No closing quotation"),
        ("   ", 400, "empty command line"),
        ("/etc/passwd", 400, "not an executable"),
    ],
)
def test_bad_programs_are_client_errors(client: httpx.Client, app: str, status: int, fragment: str) -> None:
    answer = client.post("/desktop/launch", json={"app": app})
    assert answer.status_code == status
    assert fragment in answer.json()["error"]["message"]


def test_an_app_dying_before_its_window_is_a_conflict(client: httpx.Client) -> None:
    answer = client.post(
        "/desktop/launch", json={"app": "sh -c 'echo boom >&2; exit 3'", "wait_for_window": True}
    )
    assert answer.status_code == 409
    details = answer.json()["error"]["details"]
    assert details["exit_code"] == 3
    assert "boom" in details["log"]


def test_a_windowless_app_times_out_and_keeps_running(client: httpx.Client) -> None:
    answer = client.post("/desktop/launch", json={"app": "sleep 30", "wait_for_window": True, "timeout": 0.5})
    assert answer.status_code == 504
    pid = answer.json()["error"]["details"]["pid"]
    try:
        assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    finally:
        _kill(pid)


def test_launched_apps_and_their_orphans_never_stay_zombies(
    agent: RunningAgent, client: httpx.Client
) -> None:
    pids = [
        client.post("/desktop/launch", json={"app": "true"}).json()["pid"],
        # sh leaves a background child behind: an orphan the agent (a subreaper) must reap.
        client.post("/desktop/launch", json={"app": "sh -c 'sleep 0.3 & exit 0'"}).json()["pid"],
    ]

    def zombies() -> list[int]:
        return [
            child.pid
            for child in psutil.Process(agent.process.pid).children()
            if child.status() == psutil.STATUS_ZOMBIE
        ]

    def running() -> list[int]:
        return [
            child.pid
            for child in psutil.Process(agent.process.pid).children()
            if child.status() != psutil.STATUS_ZOMBIE and child.name() in ("true", "sh", "sleep")
        ]

    wait_until(lambda: not running(), timeout=10, what="the apps and the orphan to exit")
    try:
        wait_until(lambda: not zombies(), timeout=10, what="every exited child to be reaped")
    except AssertionError:
        stuck = [(pid, psutil.Process(pid).cmdline()) for pid in zombies()]
        raise AssertionError(f"zombie children of the agent: {stuck}") from None
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def _gone_or_zombie(pid: int) -> bool:
    """Dead: gone, or a zombie of an init that does not reap (as in these containers)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_launched_apps_survive_an_agent_restart(desktop: DevDesktop, tmp_path: Path) -> None:
    env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = start_agent(env, tmp_path / "first", "--display", desktop.display)
    pid = 0
    try:
        with first.client() as http:
            body = http.post(
                "/desktop/launch", json={"app": "xterm -T survivor -e 'sleep 60'", "wait_for_window": True}
            ).json()
        pid, window = body["pid"], int(body["window_id"], 16)
        first.stop()
        assert first.process.returncode is not None
        time.sleep(0.5)  # pacing: had the agent's exit taken the app along, it would be gone by now
        assert not _gone_or_zombie(pid)
        assert window in wmctrl(desktop)
        second = start_agent(env, tmp_path / "second", "--display", desktop.display)
        try:
            with second.client() as http:  # a new agent sees and manages it
                assert http.post(f"/desktop/window/{hex(window)}/close", json={}).status_code == 200
            wait_until(lambda: _gone_or_zombie(pid), timeout=10, what="the survivor to close")
        finally:
            second.stop()
    finally:
        first.stop()
        if pid and not _gone_or_zombie(pid):
            _kill(pid)


async def test_under_systemd_each_app_gets_a_scope_of_its_own(desktop: DevDesktop, tmp_path: Path) -> None:
    """A stand-in systemd manager on a private bus receives StartTransientUnit for the app."""
    from agent.session.launch_scope import ScopeMover
    from agent.session.launcher import Launcher
    from agent.session.user import resolve_user
    from agent.x11.windows import WindowService
    from tests.x11.fake_systemd import FakeSystemd

    async with FakeSystemd() as systemd:
        windows = WindowService.for_display(desktop.display)
        launcher = Launcher(
            resolve_user(None),
            desktop.display,
            windows,
            log_dir=tmp_path,
            base_env=desktop.env,
            scope=ScopeMover(systemd.address),
        )
        try:
            started = await launcher.launch("sleep 30")
            assert len(systemd.manager.calls) == 1
            name, mode, props = systemd.manager.calls[0]
            assert name == f"app-computer_agent-sleep-{started.pid}.scope"
            assert mode == "fail"
            assert props["PIDs"] == [started.pid]
            assert props["CollectMode"] == "inactive-or-failed"
            _kill(started.pid)
        finally:
            await launcher.close()
            await windows.close()


def test_outside_systemd_nothing_is_moved() -> None:
    from agent.session.launch_scope import ScopeMover

    assert ScopeMover.detect({}) is None
    assert ScopeMover.detect({"INVOCATION_ID": "x", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/b"}) is not None


def test_wait_for_window_of_an_app_without_net_wm_pid(desktop: DevDesktop, client: httpx.Client) -> None:
    body = client.post(
        "/desktop/launch", json={"app": "xlogo", "wait_for_window": True, "timeout": 10}
    ).json()
    try:
        assert body["window_id"] is not None, body
        assert "xlogo" in observe(desktop, "xprop", "-id", body["window_id"], "WM_CLASS")
    finally:
        _kill(body.get("pid") or body["error"]["details"]["pid"])


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the desktop user needs root")
def test_apps_run_as_the_desktop_user(desktop: DevDesktop, tmp_path: Path) -> None:
    env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)
    agent = start_agent(env, tmp_path, "--display", desktop.display, "--desktop-user", "nobody")
    try:
        with agent.client() as http:
            body = http.post(
                "/desktop/launch", json={"app": "sh -c 'id -u; echo $HOME $USER; sleep 5'"}
            ).json()
        pid, log = body["pid"], Path(body["log_path"])
        wait_until(lambda: len(log.read_text().splitlines()) >= 2, what="the app's output")
        assert psutil.Process(pid).uids().real == 65534
        assert log.read_text().splitlines()[:2] == ["65534", "/nonexistent nobody"]
        assert log.stat().st_uid == 65534  # the user owns the log (in /tmp: nobody has no home)
        assert not Path("/nonexistent").exists()
        _kill(pid)
    finally:
        agent.stop()
