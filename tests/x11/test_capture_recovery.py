"""Screen capture heals by itself after the X server restarts, and /ready tells the truth about it.

The X server is killed while clients take screenshots in every variant (PNG, JPEG, with and
without the cursor), then started again on the same display. While it is away every screenshot
must be a 503 DISPLAY_UNAVAILABLE with Retry-After (never a 500), /ready must be a 503 naming the
capture, and once it is back every variant must answer 200 again, without restarting the agent.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from Xlib import error as xerror
from Xlib.display import Display

from tests.conftest import RunningAgent, start_agent, stop_process
from tests.displays import free_display_number
from tests.waiting import wait_until
from tests.x11.test_recovery import start_xvfb

VARIANTS = (
    "/desktop/screenshot",
    "/desktop/screenshot?format=jpeg",
    "/desktop/screenshot?format=png",
    "/desktop/screenshot?cursor=true",
    "/desktop/screenshot?format=jpeg&cursor=true",
)
CLIENTS = 6


@dataclass
class Server:
    number: int
    xvfb: subprocess.Popen[bytes]
    agent: RunningAgent

    def kill(self) -> None:
        self.xvfb.kill()
        self.xvfb.wait()
        socket = Path(f"/tmp/.X11-unix/X{self.number}")
        with contextlib.suppress(AssertionError):  # Xvfb -kill may leave it behind: removed below
            wait_until(lambda: not socket.exists(), what="Xvfb's socket to go")
        socket.unlink(missing_ok=True)
        Path(f"/tmp/.X{self.number}-lock").unlink(missing_ok=True)

    def restart(self) -> None:
        self.xvfb = start_xvfb(self.number)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    number = free_display_number()
    xvfb = start_xvfb(number)
    agent = start_agent(dict(os.environ, DISPLAY=f":{number}"), tmp_path, "--display", f":{number}")
    running = Server(number, xvfb, agent)
    yield running
    agent.stop()
    stop_process(running.xvfb)


@dataclass
class Load:
    """Clients taking screenshots in a loop; every answer's status is recorded by phase."""

    agent: RunningAgent
    phase: str = "before"
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    bad: list[tuple[str, str, int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, index: int) -> None:
        with self.agent.client() as client:
            turn = index
            while not self.stop.is_set():
                path = VARIANTS[turn % len(VARIANTS)]
                turn += 1
                response = client.get(path)
                with self.lock:
                    self.statuses.setdefault(self.phase, Counter())[response.status_code] += 1
                    if response.status_code == 503:
                        body = response.json()
                        if body["error"]["code"] != "DISPLAY_UNAVAILABLE" or not response.headers.get(
                            "Retry-After"
                        ):
                            self.bad.append((self.phase, path, 503, response.text[:300]))
                    elif response.status_code != 200:
                        self.bad.append((self.phase, path, response.status_code, response.text[:300]))


def capture_check(client: httpx.Client) -> tuple[int, dict[str, object]]:
    response = client.get("/ready")
    checks = response.json()["checks"]
    return response.status_code, checks.get("capture", {})


def test_screenshots_heal_after_the_x_server_restarts_under_load(server: Server) -> None:
    load = Load(server.agent)
    threads = [threading.Thread(target=load.run, args=(i,), daemon=True) for i in range(CLIENTS)]
    with server.agent.client() as client:
        wait_until(
            lambda: client.get("/ready").status_code == 200, timeout=10, what="the agent to become ready"
        )
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.0)  # pacing: the load runs a while against a healthy server
            load.phase = "away"
            server.kill()
            time.sleep(0.5)  # pacing: requests that were in flight when the server died settle
            load.phase = "gone"
            wait_until(
                lambda: capture_check(client)[0] == 503,
                timeout=10,
                what="/ready to answer 503 with the display gone",
            )
            status, capture = capture_check(client)
            assert status == 503 and capture["ok"] is False, capture
            time.sleep(1.5)  # pacing: the load keeps hitting the dead display a while

            load.phase = "restarting"
            server.restart()
            # Every variant heals by itself; no restart of the agent, no special query.
            wait_until(
                lambda: all(client.get(path).status_code == 200 for path in VARIANTS),
                timeout=10,
                what="screenshots to recover after the X server came back",
            )
            load.phase = "back"
            time.sleep(2.0)  # pacing: the load runs a while against the restarted server
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(timeout=30)

        wait_until(
            lambda: capture_check(client)[0] == 200, timeout=10, what="/ready to recover with the capture"
        )
        status, capture = capture_check(client)
        assert capture["ok"] is True, capture
        for path in VARIANTS:
            shot = client.get(path)
            assert shot.status_code == 200, (path, shot.text[:300])
            assert shot.headers["X-Screen-Width"] == "800"
            assert shot.content[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb")

    assert not load.bad, (load.bad[:5], load.statuses)
    assert load.statuses["gone"][503] > 0, load.statuses
    assert set(load.statuses["gone"]) == {503}, load.statuses
    assert set(load.statuses["back"]) == {200}, load.statuses
    assert server.agent.process.poll() is None


def fill_client_slots(display_name: str) -> list[Display]:
    """Open connections until the X server refuses more ("Maximum number of clients reached")."""
    fillers: list[Display] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # python-xlib leaves a refused socket open
        while True:
            try:
                fillers.append(Display(display_name))
            except xerror.DisplayConnectionError:
                gc.collect()
                return fillers
            assert len(fillers) < 1000, "the X server accepts any number of clients"


def test_ready_names_a_capture_that_cannot_grab_while_input_works(tmp_path: Path) -> None:
    """The capture connection alone dies and cannot come back (the server is full): /ready must
    say so although input, on its own connection, still works; both heal when slots free up."""
    number = free_display_number()
    display_name = f":{number}"
    xvfb = start_xvfb(number, "-maxclients", "64")
    agent = start_agent(dict(os.environ, DISPLAY=display_name), tmp_path, "--display", display_name)
    observer = Display(display_name)
    fillers: list[Display] = []
    try:
        with agent.client() as client:
            wait_until(
                lambda: client.get("/ready").status_code == 200, timeout=10, what="the agent to become ready"
            )
            assert client.get("/desktop/screenshot").status_code == 200
            # The capture's connection is the one client holding a MIT-SHM segment.
            capture_clients = [
                entry.resource_base
                for entry in observer.res_query_clients().clients
                if any(
                    observer.get_atom_name(kind.resource_type) == "ShmSeg"
                    for kind in observer.res_query_client_resources(entry.resource_base).types
                )
            ]
            assert len(capture_clients) == 1, capture_clients
            fillers = fill_client_slots(display_name)
            observer.create_resource_object("window", capture_clients[0]).kill_client()
            observer.sync()
            fillers += fill_client_slots(display_name)  # take the slot the capture had

            for path in VARIANTS:
                shot = client.get(path)
                assert shot.status_code == 503, (path, shot.status_code, shot.text[:300])
                assert shot.json()["error"]["code"] == "DISPLAY_UNAVAILABLE"
                assert shot.headers["Retry-After"]
            wait_until(
                lambda: client.get("/ready").status_code == 503,
                timeout=10,
                what="/ready to answer 503 with the capture broken",
            )
            checks = client.get("/ready").json()["checks"]
            assert checks["display"]["ok"] is True, checks
            assert checks["capture"]["ok"] is False and checks["capture"]["required"] is True, checks
            assert "capture" in checks["capture"]["detail"], checks
            assert client.post("/desktop/move", json={"x": 42, "y": 24}).status_code == 200
            assert client.get("/desktop/cursor").json() == {"x": 42, "y": 24}

            for filler in fillers:
                filler.close()
            fillers = []
            wait_until(
                lambda: client.get("/ready").status_code == 200,
                timeout=10,
                what="/ready to recover with the capture",
            )
            for path in VARIANTS:
                shot = client.get(path)
                assert shot.status_code == 200, (path, shot.text[:300])
        assert agent.process.poll() is None
    finally:
        for filler in fillers:
            filler.close()
        observer.close()
        agent.stop()
        stop_process(xvfb)
