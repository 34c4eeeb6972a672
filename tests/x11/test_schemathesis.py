"""Property-based run of schemathesis against the served OpenAPI document, on a private desktop.

No operation may answer 5xx to any input, and every answer must match the document (status
code, content type, headers, body schema). Requests the schema allows but the desktop refuses
(an off-screen coordinate, an unknown key name) are 400 by design, so that one check is off.
The agent runs with --exec false and --browser false, so that no generated body can run a command,
start an app or drive the browser to a generated URL on the test machine (those routes answer 403,
which is fuzzed too); the agent's own counters then prove that no command ran. Wallpaper (fetches URLs), window close and wait are left out.

Each phase gets its own time budget: with one ``--max-time`` for the whole run, fuzzing (which
repeats until the budget is spent) left the stateful phase 3 s, and none of the document's links
was followed. The stateful run must follow some.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, start_agent, stop_process
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(330)

# /mcp speaks JSON-RPC (its errors are JSON-RPC's, not the envelope): tests/x11/test_mcp.py drives
# it with the official MCP client instead. GET /events and GET /screencast never end and GET /ws
# speaks WebSocket (tests/x11/test_live_*.py, test_screencast.py and test_viewer.py test them).
EXCLUDED = r"^/desktop/(wallpaper|wait)|/close$|^/mcp$|^/events$|^/ws$|^/screencast$"
# Seconds per run: examples, coverage and fuzzing, then the stateful phase (links between calls).
BUDGETS = {"fuzzing": 65, "stateful": 40}
# With --exec false /processes only ever answers 403 or an empty list: the stateful phase would
# spend its budget there (8,000 calls, no link followed). It explores the window links instead.
STATEFUL_EXCLUDED = EXCLUDED + r"|^/processes"

# A body over a route's limit is refused with 413 before it is parsed: as much a rejection of
# invalid data as a 400 (schemathesis's default list leaves 413 out).
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""


@pytest.fixture(scope="module")
def private_desktop() -> Iterator[DevDesktop]:
    with DevDesktop() as desktop:
        yield desktop


@pytest.fixture(scope="module")
def private_agent(
    private_desktop: DevDesktop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningAgent]:
    agent = start_agent(
        dict(private_desktop.env),
        tmp_path_factory.mktemp("schemathesis"),
        "--display",
        private_desktop.display,
        "--exec",
        "false",
        "--browser",
        "false",
    )
    yield agent
    agent.stop()


@contextlib.contextmanager
def a_window(desktop: DevDesktop) -> Iterator[None]:
    """A window on the desktop: GET /desktop/windows then lists an id, which the stateful
    phase follows (the document's links) into the /desktop/window/{window_id} routes."""
    window = subprocess.Popen(["xlogo"], env=desktop.env)

    def mapped() -> bytes:
        argv = ["xdotool", "search", "--onlyvisible", "--class", "xlogo"]
        return subprocess.run(argv, env=desktop.env, capture_output=True, check=False).stdout.strip()

    try:
        wait_until(mapped, what="xlogo's window")
        yield
    finally:
        stop_process(window)


def run_phases(agent: RunningAgent, config: Path, phases: str, seconds: int) -> str:
    """One schemathesis run of ``phases`` within ``seconds``; its report (asserted successful)."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{agent.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {agent.token}",
        "--phases",
        phases,
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--exclude-path-regex",
        STATEFUL_EXCLUDED if phases == "stateful" else EXCLUDED,
        "--max-examples",
        "8",
        "--max-time",
        str(seconds),
        "--seed",
        "20261123",
        "--request-timeout",
        "40",
        "--max-response-time",
        "35",  # /desktop/wait and wait actions may sleep 30 s by design
        "--workers",
        "1",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 120, cwd=config.parent, check=False
    )
    # A failing case's body may be megabytes of one repeated escape: fold runs so the report fits.
    report = (
        re.sub(r"(.{1,12}?)\1{16,}", r"\1[...]", result.stdout[-200_000:])[-6000:] + result.stderr[-2000:]
    )
    assert result.returncode == 0, report
    return result.stdout


def test_no_5xx_and_every_answer_matches_the_document(
    private_desktop: DevDesktop, private_agent: RunningAgent, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    reports = {"fuzzing": run_phases(private_agent, config, "examples,coverage,fuzzing", BUDGETS["fuzzing"])}
    with a_window(private_desktop):
        reports["stateful"] = run_phases(private_agent, config, "stateful", BUDGETS["stateful"])
    links = re.search(r"(\d+) covered / (\d+) selected / (\d+) total", reports["stateful"])
    assert links is not None, reports["stateful"][-3000:]
    print(f"\nschemathesis stateful phase: {links.group(0)} API links")
    assert int(links.group(1)) > 0, reports["stateful"][-3000:]
    assert private_agent.process.poll() is None, "the agent died under fuzzing"
    with private_agent.client() as client:
        metrics = client.get("/metrics").text
    ran = [
        line
        for line in metrics.splitlines()
        if line.startswith("computer_agent_actions_total{")
        and 'result="ok"' in line
        and any(f'type="{kind}"' in line for kind in ("exec", "bash", "debug", "launch"))
    ]
    assert not ran, ran
