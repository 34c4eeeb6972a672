"""An agent nobody drives does not carry the operation machinery (issue 19).

A real ``computer-agent serve`` on a desktop with a session bus and AT-SPI: monitors call the
probes, windows come and go (desktop events are published into the ring), and pydantic's core
library is still not mapped into the process, as the kernel reports it in /proc/PID/maps;
the first action loads it (which shows the check can see it).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from agent.session.devdesktop import DevDesktop
from tests.conftest import start_agent, stop_process
from tests.waiting import wait_until

CORE = "_pydantic_core"


def _mapped(pid: int) -> bool:
    return CORE in Path(f"/proc/{pid}/maps").read_text()


def test_probes_and_desktop_events_leave_the_schema_machinery_unloaded(
    desktop: DevDesktop, tmp_path: Path
) -> None:
    agent = start_agent(dict(desktop.env), tmp_path, "--display", desktop.display)
    window = None
    try:
        with agent.client() as http:
            wait_until(lambda: http.get("/ready").status_code == 200, timeout=30, what="/ready 200")
            assert http.get("/ready").json()["checks"]["accessibility"]["ok"]
            window = subprocess.Popen(["xmessage", "-name", "idle-probe", "idle"], env=desktop.env)
            listed = subprocess.run(
                ["xdotool", "search", "--sync", "--classname", "idle-probe"], env=desktop.env, capture_output=True,
                text=True, timeout=20, check=True,
            )  # fmt: skip
            assert listed.stdout.strip()
            health = http.get("/health")
            metrics = http.get("/metrics")
            assert health.status_code == metrics.status_code == 200
            assert health.json()["status"] == "ok"
            assert 'computer_agent_actions_total{result="ok",type="health"}' in http.get("/metrics").text
            assert http.head("/ready").status_code == 200
            assert not _mapped(agent.process.pid)

            assert http.post("/actions", json={"type": "move", "x": 3, "y": 4}).status_code == 200
            assert _mapped(agent.process.pid)
            # The window's event, published while nobody followed, is read from the ring.
            assert "idle-probe" in _created_window_names(http)
    except Exception:
        print(agent.log_path.read_text()[-4000:])
        raise
    finally:
        if window is not None:
            stop_process(window)
        agent.stop()


def _created_window_names(http: httpx.Client) -> set[str]:
    """The WM_CLASS instances of the windows in the ring's window.created events, up to idle-probe."""
    seen: set[str] = set()
    params = {"last_event_id": "0", "events": "window.created"}
    with http.stream("GET", "/events", params=params, timeout=10) as stream:
        for line in stream.iter_lines():
            event = json.loads(line)
            if event["type"] == "gap":
                continue
            seen.add(str((event["window"] or {}).get("instance")))
            if "idle-probe" in seen:
                break
    return seen
