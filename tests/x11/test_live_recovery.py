"""The event stream survives its X server going away: readiness events say so, and window events
resume on the new server without the reader reconnecting."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import start_agent, stop_process
from tests.displays import free_display_number
from tests.live_client import bearer, ws_url
from tests.waiting import wait_until
from tests.x11.test_live_events import sse
from tests.x11.test_recovery import start_xvfb


@pytest.fixture()
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        yield http


async def test_events_follow_the_display_through_a_restart(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    number = free_display_number()
    xvfb = start_xvfb(number)
    env = dict(os.environ, DISPLAY=f":{number}")
    agent = start_agent(env, tmp_path, "--display", f":{number}")
    try:
        async with sse(session, agent) as events:
            stop_process(xvfb)
            wait_until(lambda: not Path(f"/tmp/.X11-unix/X{number}").exists(), what="Xvfb's socket to go")
            lost = await events.take(
                lambda e: e["type"] == "readiness.changed" and not e["ready"], "readiness: not ready"
            )
            assert lost["checks"]["display"] is False
            xvfb = start_xvfb(number)
            back = await events.take(
                lambda e: e["type"] == "readiness.changed" and e["ready"] and e["id"] > lost["id"],
                "readiness: ready again",
            )
            assert back["checks"]["display"] is True
            xterm = subprocess.Popen(
                ["xterm", "-T", "after-restart", "-e", "sleep 600"], env=env, stderr=subprocess.DEVNULL
            )
            try:
                created = await events.take(
                    lambda e: e["type"] == "window.created" and e["window"]["title"] == "after-restart",
                    "a window on the new server",
                    timeout=15,
                )
                assert created["window"]["class"] == "XTerm"
            finally:
                stop_process(xterm)
            await events.take(lambda e: e["type"] == "window.destroyed", "its window destroyed")
    finally:
        agent.stop()
        stop_process(xvfb)


async def test_streams_end_when_the_agent_stops(
    desktop: DevDesktop, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A stopping agent tells its readers (readiness: stopping), ends SSE streams and closes /ws
    with 1001 at once, rather than keeping them until the stop's deadline cancels them."""
    agent = start_agent(dict(desktop.env), tmp_path, "--display", desktop.display)
    try:
        async with sse(session, agent) as events:
            ws = await session.ws_connect(ws_url(agent, "events=readiness"), headers=bearer(agent))
            agent.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(events.ended(), 10)
            assert events.failure is None
            assert events.events[-1]["type"] == "readiness.changed"
            assert events.events[-1]["status"] == "stopping"
            frames = [await ws.receive(timeout=10)]
            while frames[-1].type == aiohttp.WSMsgType.TEXT:
                frames.append(await ws.receive(timeout=10))
            assert json.loads(frames[-2].data)["status"] == "stopping"
            # The agent's close frame (the client's reply may not make it: the agent has gone).
            assert (frames[-1].type, frames[-1].data) == (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSCloseCode.GOING_AWAY,
            )
        assert agent.process.wait(timeout=10) == 0
        assert "cancelled" not in agent.log_path.read_text()
    finally:
        agent.stop()
