"""The agent keeps the protective OOM score systemd gives it; what it starts does not.

Root only (lowering a score needs CAP_SYS_RESOURCE, which systemd has when it applies
OOMScoreAdjust=). Observed in /proc, not through the agent.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import stop_process


def _can_lower_oom_score() -> bool:
    probe = subprocess.run(
        ["sh", "-c", "echo -500 > /proc/self/oom_score_adj && cat /proc/self/oom_score_adj"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() == "-500"


pytestmark = [
    pytest.mark.skipif(
        not _can_lower_oom_score(),
        reason="this kernel or sandbox refuses a negative oom_score_adj (needs root)",
    ),
]

AGENT_BIN = Path(sys.executable).parent / "computer-agent"


def test_children_do_not_inherit_the_agents_oom_protection(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(16)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    with DevDesktop(width=640, height=480, window_manager=None, session_bus=False) as desktop:
        # As systemd does for OOMScoreAdjust=-500: set it, then exec the agent.
        wrapper = 'echo -500 > /proc/self/oom_score_adj && exec "$@"'
        argv = [str(AGENT_BIN), "serve", "--port", "0", "--token-file", str(token_file)]
        argv += ["--display", desktop.display, "--accessibility", "false"]
        agent = subprocess.Popen(
            ["sh", "-c", wrapper, "sh", *argv],
            env=desktop.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert agent.stdout is not None
            url = None
            deadline = time.monotonic() + 20
            while url is None and time.monotonic() < deadline:
                line = agent.stdout.readline()
                if not line:
                    break
                if '"listening"' in line:
                    url = json.loads(line)["url"]
            assert url is not None, "the agent did not start"
            assert Path(f"/proc/{agent.pid}/oom_score_adj").read_text().strip() == "-500"
            headers = {"Authorization": f"Bearer {token}"}
            ran = httpx.post(
                f"{url}/exec", json={"command": "cat /proc/self/oom_score_adj"}, headers=headers, timeout=30
            )
            assert ran.status_code == 200, ran.text
            assert ran.json()["stdout"].strip() == "0"  # the default, not the agent's -500
            launched = httpx.post(
                f"{url}/desktop/launch", json={"app": "sleep 30"}, headers=headers, timeout=30
            )
            assert launched.status_code == 200, launched.text
            pid = launched.json()["pid"]
            assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == "0"
            os.kill(pid, signal.SIGKILL)
        finally:
            stop_process(agent, timeout=15)
            if agent.stdout is not None:
                agent.stdout.close()
