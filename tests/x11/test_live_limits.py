"""The live channels' bounds, on an agent with a tiny event ring and /ws send buffer: a reader
that resumes from beyond the ring gets a gap event; a /ws reader that stops reading is closed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, start_agent
from tests.live_client import bearer, ws_url
from tests.x11.test_live_events import sse, titled, xterm

RING = 4


@pytest.fixture(scope="module")
def tight_agent(desktop: DevDesktop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    env = dict(desktop.env)
    running = start_agent(
        env,
        tmp_path_factory.mktemp("tight-agent"),
        "--display",
        desktop.display,
        "--events-ring-size",
        str(RING),
        "--ws-send-buffer-bytes",
        "1M",
    )
    yield running
    running.stop()


@pytest.fixture()
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def test_resuming_from_beyond_the_ring_gets_a_gap(
    tight_agent: RunningAgent, desktop: DevDesktop, session: aiohttp.ClientSession
) -> None:
    with contextlib.ExitStack() as stack:
        async with sse(session, tight_agent) as left:
            window = stack.enter_context(xterm(desktop, "gap-0"))
            await left.take(titled("window.created", "gap-0"), "the xterm managed")
            window.rename("gap-1")
            last = await left.take(titled("window.renamed", "gap-1"), "the rename before leaving")
        for n in range(2, 3 * RING):
            window.rename(f"gap-{n}")
        window.rename("gap-end")
        async with sse(session, tight_agent, last_event_id=last["id"]) as resumed:
            end = await resumed.take(titled("window.renamed", "gap-end"), "the replay up to the last rename")
        gap = resumed.events[0]
        assert gap["type"] == "gap"
        assert gap["missed_from"] == last["id"] + 1
        replayed = [e["id"] for e in resumed.events[1:] if e["id"] <= end["id"]]
        assert replayed == list(range(gap["missed_to"] + 1, end["id"] + 1))
        # Ten renames were missed: the ring held four of them when the reader came back.
        assert gap["missed_to"] - gap["missed_from"] + 1 >= RING


async def test_a_reader_that_stops_reading_is_disconnected(
    tight_agent: RunningAgent, session: aiohttp.ClientSession
) -> None:
    """Answers of ~1 MB each to a client that reads nothing: past the 1 MiB outbox the agent
    closes the connection instead of holding them."""
    ws = await session.ws_connect(ws_url(tight_agent), headers=bearer(tight_agent), max_msg_size=0)
    sent = 40
    for index in range(sent):
        command = {"type": "exec", "command": "head -c 900000 /dev/zero | tr '\\0' x", "request_id": index}
        await ws.send_str(json.dumps(command))
    await asyncio.sleep(5)  # aiohttp's client stops reading its socket past 64 KiB unread
    answers = 0
    async for message in ws:
        if message.type == aiohttp.WSMsgType.TEXT:
            answers += 1
    assert ws.closed
    assert answers < sent
    log = tight_agent.log_path.read_text()
    assert "slow reader" in log
    # The agent itself is fine.
    with tight_agent.client() as client:
        assert client.get("/health").status_code == 200
