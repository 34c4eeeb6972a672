"""Shared fixtures: one private desktop per test session, and a real agent serving it.

The desktop (Xvfb + window manager + session bus) is started once and kept for the whole
session (Xvfb runs with -noreset), the agent runs as a real ``computer-agent serve`` process,
and tests observe effects with independent tools (xdotool, xclip, xwininfo, GTK apps, files).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.leaks import LeakWatch

LEAKED = pytest.StashKey[list[str]]()

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
AGENT_BIN = Path(sys.executable).parent / "computer-agent"

# A test's tier is the directory it lives in; the marker of the same name is derived from it, so
# `pytest -m unit` and friends select exactly those directories.
TIERS = ("unit", "x11", "a11y", "system")
SYSTEM_TEST_SWITCH = "COMPUTER_AGENT_SYSTEM_TEST"


def tier_of(path: Path) -> str | None:
    """The tier of a test file: the first directory under tests/, if it names a tier."""
    try:
        first = path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return first if first in TIERS else None


class UntieredModule(pytest.Module):
    """A test file outside every tier directory: reported as a collection error, never run."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        raise self.CollectError(
            f"{self.path} belongs to no test tier: move it under tests/{{{','.join(TIERS)}}}/"
        )


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if tier_of(module_path) is None:
        return UntieredModule.from_parent(parent, path=module_path)
    return None


LEAKS = LeakWatch()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    LEAKS.after_test(item.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaked = LEAKS.leaks()
    if leaked:
        session.config.stash[LEAKED] = leaked
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    leaked = config.stash.get(LEAKED, [])
    if leaked:
        terminalreporter.section("processes that outlived the tests (a test ends what it starts)", red=True)
        for line in leaked:
            terminalreporter.line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_system = os.environ.get(SYSTEM_TEST_SWITCH) == "1"
    for item in items:
        tier = tier_of(item.path)
        assert tier is not None, item.nodeid  # untiered modules yield no items
        item.add_marker(getattr(pytest.mark, tier))
        if tier == "system" and not run_system:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"system test: root, a container engine, minutes; {SYSTEM_TEST_SWITCH}=1 runs it"
                    " (`make test-system`)"
                )
            )


@dataclass
class RunningAgent:
    url: str
    token: str
    process: subprocess.Popen[str]
    log_path: Path
    log: IO[str]
    drain: threading.Thread

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
            **kwargs,  # type: ignore[arg-type]
        )

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        self.drain.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()


def stop_process(process: subprocess.Popen[Any], timeout: float = 5) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; always reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_agent(env: dict[str, str], tmp: Path, *extra: str, auth: bool = True) -> RunningAgent:
    """Start ``computer-agent serve`` on a free loopback port and wait until it listens.

    ``auth=False``: with ``--insecure-no-auth`` and no token (the loopback development mode).
    """
    token = secrets.token_urlsafe(24) if auth else ""
    token_file = tmp / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    log_path = tmp / "agent.log"
    log = log_path.open("w")
    credentials = ["--token-file", str(token_file)] if auth else ["--insecure-no-auth"]
    process = subprocess.Popen(
        [str(AGENT_BIN), "serve", "--port", "0", *credentials, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 20
    url = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log.write(line)
        log.flush()
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("event") == "listening":
            url = entry["url"]
            break
    if url is None:
        process.kill()
        process.wait()
        log.close()
        raise RuntimeError(f"the agent did not start; see {log_path}: {log_path.read_text()[-2000:]}")

    # Keep draining its stdout into the log so the pipe never fills.
    def drain() -> None:
        assert process.stdout is not None
        for rest in process.stdout:
            log.write(rest)
            log.flush()

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    return RunningAgent(url, token, process, log_path, log, drainer)


@pytest.fixture(scope="session")
def desktop() -> Iterator[DevDesktop]:
    with DevDesktop() as running:
        yield running


@pytest.fixture(scope="session")
def agent(desktop: DevDesktop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)
    running = start_agent(env, tmp_path_factory.mktemp("agent"), "--display", desktop.display)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def agent_url(agent: RunningAgent) -> str:
    return agent.url


@pytest.fixture()
def client(agent: RunningAgent) -> Iterator[httpx.Client]:
    with agent.client() as http:
        yield http


def run_observer(desktop: DevDesktop, *argv: str, timeout: float = 10) -> str:
    """Run an observer tool (xdotool, xprop, xwininfo, xclip, ...) on the test desktop."""
    result = subprocess.run(
        argv, env=desktop.env, capture_output=True, text=True, timeout=timeout, check=True
    )
    return result.stdout


@pytest.fixture(autouse=True)
def _no_display_leak() -> Iterator[None]:
    """Tests must not depend on the developer's own DISPLAY."""
    saved = os.environ.pop("DISPLAY", None)
    yield
    if saved is not None:
        os.environ["DISPLAY"] = saved
