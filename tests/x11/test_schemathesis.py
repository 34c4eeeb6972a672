"""Property-based run of schemathesis against the served OpenAPI document, on a private desktop.

No operation may answer 5xx to any input, and every answer must match the document (status
code, content type, headers, body schema). Requests the schema allows but the desktop refuses
(an off-screen coordinate, an unknown key name) are 400 by design, so that one check is off.
The agent runs with --exec false, so that no generated body can run a command or start an app
on the test machine (those routes answer 403, which is fuzzed too); the agent's own counters then
prove that no command ran. Wallpaper (fetches URLs), window close and wait are left out.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, start_agent

pytestmark = pytest.mark.timeout(330)

EXCLUDED = r"^/desktop/(wallpaper|wait)|/close$"

# A body over a route's limit is refused with 413 before it is parsed: as much a rejection of
# invalid data as a 400 (schemathesis's default list leaves 413 out).
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
"""


@pytest.fixture(scope="module")
def private_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    with DevDesktop() as desktop:
        agent = start_agent(
            dict(desktop.env),
            tmp_path_factory.mktemp("schemathesis"),
            "--display",
            desktop.display,
            "--exec",
            "false",
        )
        yield agent
        agent.stop()


def test_no_5xx_and_every_answer_matches_the_document(private_agent: RunningAgent, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{private_agent.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {private_agent.token}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--exclude-path-regex",
        EXCLUDED,
        "--max-examples",
        "8",
        "--max-time",
        "120",
        "--seed",
        "20261123",
        "--request-timeout",
        "40",
        "--max-response-time",
        "35",  # /desktop/wait and wait actions may sleep 30 s by design
        "--workers",
        "1",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    # A failing case's body may be megabytes of one repeated escape: fold runs so the report fits.
    report = (
        re.sub(r"(.{1,12}?)\1{16,}", r"\1[...]", result.stdout[-200_000:])[-6000:] + result.stderr[-2000:]
    )
    assert result.returncode == 0, report
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
