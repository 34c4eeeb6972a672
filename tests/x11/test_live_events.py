"""GET /events and /ws subscriptions: events for what other clients do on the desktop (xterm
started by the test, xdotool renaming and moving it, xclip owning the clipboard), for background
processes and launched apps; Last-Event-ID replays exactly what a reader missed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, run_observer, stop_process
from tests.live_client import WsClient, bearer, ws_url
from tests.waiting import wait_until

Event = dict[str, Any]


@dataclass
class Xterm:
    """An xterm the test starts itself (another X client than the agent), driven by xdotool."""

    desktop: DevDesktop
    process: subprocess.Popen[bytes]
    id: int

    def rename(self, title: str) -> None:
        run_observer(self.desktop, "xdotool", "set_window", "--name", title, str(self.id))

    def move(self, x: int, y: int) -> None:
        run_observer(self.desktop, "xdotool", "windowmove", "--sync", str(self.id), str(x), str(y))


@contextlib.contextmanager
def xterm(desktop: DevDesktop, title: str) -> Iterator[Xterm]:
    process = subprocess.Popen(
        ["xterm", "-T", title, "-e", "sleep 600"], env=desktop.env, stderr=subprocess.DEVNULL
    )
    try:

        def find() -> int | None:
            found = subprocess.run(
                ["xdotool", "search", "--name", f"^{title}$"],
                check=False,
                env=desktop.env,
                capture_output=True,
                text=True,
            ).stdout.split()
            return int(found[0]) if found else None

        window = wait_until(find, timeout=10, what=f"the xterm {title!r}")
        yield Xterm(desktop, process, window)
    finally:
        stop_process(process)


class SseReader:
    """GET /events as an EventSource would read it: Accept: text/event-stream, Last-Event-ID."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.events: list[Event] = []
        self.failure: BaseException | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            await self._parse()
        except BaseException as exc:  # seen by take(), not lost with the task
            self.failure = exc
            self._changed.set()
            raise

    async def _parse(self) -> None:
        fields: dict[str, str] = {}
        while line := await self.response.content.readline():
            text = line.decode().rstrip("\n")
            if text:
                name, _, value = text.partition(": ")
                fields[name] = value
                continue
            event = json.loads(fields["data"])
            assert fields["event"] == event["type"] and int(fields["id"]) == event["id"]
            self.events.append(event)
            fields = {}
            self._changed.set()

    async def take(self, predicate: Callable[[Event], bool], what: str, timeout: float = 10) -> Event:
        async def loop() -> Event:
            while True:
                found = next((e for e in self.events if predicate(e)), None)
                if found is not None:
                    return found
                if self.failure is not None:
                    raise AssertionError(f"reading the stream failed: {self.failure!r}")
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(f"{what} did not come within {timeout} s; got {self.events[-8:]}") from None

    async def ended(self) -> None:
        """Until the agent ends the stream."""
        await asyncio.gather(self._task, return_exceptions=True)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.response.close()


@contextlib.asynccontextmanager
async def sse(
    session: aiohttp.ClientSession, agent: RunningAgent, last_event_id: int | None = None, query: str = ""
) -> AsyncIterator[SseReader]:
    headers = {**bearer(agent), "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    response = await session.get(f"{agent.url}/events{query}", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    reader = SseReader(response)
    try:
        yield reader
    finally:
        await reader.close()


@pytest.fixture()
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        yield http


def titled(kind: str, title: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == kind and e["window"] is not None and e["window"]["title"] == title


async def test_window_events_for_another_clients_window(
    agent: RunningAgent, desktop: DevDesktop, session: aiohttp.ClientSession
) -> None:
    async with sse(session, agent, query="?events=window") as events:
        with xterm(desktop, "events-xterm") as window:
            created = await events.take(titled("window.created", "events-xterm"), "window.created")
            assert created["window"]["id"] == hex(window.id)
            assert created["window"]["class"] == "XTerm"
            await events.take(titled("window.focused", "events-xterm"), "window.focused")
            window.rename("events-xterm renamed")
            renamed = await events.take(titled("window.renamed", "events-xterm renamed"), "window.renamed")
            assert renamed["old_title"] == "events-xterm"
            window.move(123, 134)
            info = run_observer(desktop, "xwininfo", "-id", str(window.id))
            x = int(info.split("Absolute upper-left X:")[1].split()[0])
            y = int(info.split("Absolute upper-left Y:")[1].split()[0])
            moved = await events.take(
                lambda e: e["type"] == "window.moved" and (e["window"]["x"], e["window"]["y"]) == (x, y),
                f"window.moved to {x},{y} (where xwininfo sees it)",
            )
            assert moved["window"]["id"] == hex(window.id)
        destroyed = await events.take(titled("window.destroyed", "events-xterm renamed"), "window.destroyed")
        assert destroyed["window"]["id"] == hex(window.id)
    kinds = {e["type"] for e in events.events}
    assert kinds <= {
        "window.created",
        "window.destroyed",
        "window.focused",
        "window.renamed",
        "window.moved",
        "window.resized",
    }
    ids = [e["id"] for e in events.events]
    assert ids == sorted(set(ids))


async def test_clipboard_process_and_app_events_on_a_ws_subscription(
    agent: RunningAgent, desktop: DevDesktop, session: aiohttp.ClientSession, client: httpx.Client
) -> None:
    ws = WsClient(await session.ws_connect(ws_url(agent), headers=bearer(agent)))
    subscribed = await ws.request(
        {"type": "subscribe", "events": ["clipboard", "process.exited", "app.exited"], "request_id": "s"}
    )
    assert subscribed["success"] is True
    xclip = subprocess.Popen(
        ["xclip", "-quiet", "-selection", "clipboard", "-i"],
        env=desktop.env,
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert xclip.stdin is not None
        xclip.stdin.write(b"copied by xclip")
        xclip.stdin.close()
        changed = await ws.event(
            lambda e: e["type"] == "clipboard.changed" and e["owner"], "clipboard.changed"
        )
        owner = int(changed["owner"], 16)
        assert "xclip" in run_observer(desktop, "xprop", "-id", hex(owner)) or owner > 0
    finally:
        stop_process(xclip)
    await ws.event(lambda e: e["type"] == "clipboard.changed" and e["owner"] is None, "the owner gone")

    started = client.post("/processes", json={"command": "sleep 0.2; exit 3"}).json()
    exited = await ws.event(
        lambda e: e["type"] == "process.exited" and e["process_id"] == started["id"], "process.exited"
    )
    assert exited["exit_code"] == 3 and exited["pid"] == started["pid"] and exited["signal"] is None

    launched = client.post("/desktop/launch", json={"app": "sh -c 'exit 4'"}).json()
    app = await ws.event(lambda e: e["type"] == "app.exited" and e["pid"] == launched["pid"], "app.exited")
    assert app["exit_code"] == 4 and app["program"] == "sh"
    assert not [e for e in ws.events if e["type"].startswith("window.")]  # filtered out
    await ws.close()


async def test_last_event_id_replays_exactly_what_was_missed(
    agent: RunningAgent, desktop: DevDesktop, session: aiohttp.ClientSession
) -> None:
    """A reader that leaves and comes back with Last-Event-ID gets exactly the events a reader
    that stayed saw in between: same ids, same order, same content."""
    async with sse(session, agent) as stayed:
        with xterm(desktop, "resume-0") as window:
            await stayed.take(titled("window.created", "resume-0"), "the xterm managed")
            async with sse(session, agent) as left:
                window.rename("resume-1")
                last = await left.take(titled("window.renamed", "resume-1"), "the rename before leaving")
            for n in range(2, 5):
                window.rename(f"resume-{n}")
            window.move(50 + 7, 60)
            window.rename("resume-end")
            end = await stayed.take(titled("window.renamed", "resume-end"), "the last rename")
            async with sse(session, agent, last_event_id=last["id"]) as resumed:
                await resumed.take(lambda e: e["id"] == end["id"], "the replay up to the last rename")
                missed = [e for e in stayed.events if last["id"] < e["id"] <= end["id"]]
                replayed = [e for e in resumed.events if e["id"] <= end["id"]]
    assert replayed == missed
    assert [e["window"]["title"] for e in missed if e["type"] == "window.renamed"] == [
        "resume-2",
        "resume-3",
        "resume-4",
        "resume-end",
    ]
    assert all(e["type"] != "gap" for e in replayed)


async def test_an_unknown_event_type_is_a_400(agent: RunningAgent, client: httpx.Client) -> None:
    answer = client.get("/events", params={"events": "window.exploded"})
    assert answer.status_code == 400
    assert "window.exploded" in answer.json()["error"]["message"]
