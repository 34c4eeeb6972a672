"""Test doubles for the readiness/heartbeat tests: a desktop whose display can be 'down' and a
fake control plane (a real HTTP server on loopback that records what arrives)."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agent.desktop.backend import Size
from agent.errors import DisplayUnavailable

FAKE_DISPLAY = ":fake"  # a name, never a server: nothing connects to it


class FlakyDesktop:
    """Only what Readiness uses: check(), check_capture() and screen_size(), with switches for
    the display and for the capture alone."""

    def __init__(self) -> None:
        self.up = True
        self.capture_up = True
        self.released = 0
        self.checks = 0  # how many times the display was checked: the poller's progress

    async def check(self) -> str:
        self.checks += 1
        if not self.up:
            raise DisplayUnavailable(f"the X display {FAKE_DISPLAY} is not reachable")
        return f"{FAKE_DISPLAY} 1280x720"

    async def check_capture(self) -> str:
        if not self.up or not self.capture_up:
            raise DisplayUnavailable(f"cannot capture the X display {FAKE_DISPLAY}")
        return f"grabbing {FAKE_DISPLAY}"

    async def screen_size(self) -> Size:
        if not self.up:
            raise DisplayUnavailable("down")
        return Size(1280, 720)

    async def release_all(self) -> None:
        self.released += 1


@dataclass
class Beat:
    at: float
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeControlPlane:
    """Answers beats with ``mode``: "ok", "500" or "hang"; records every arrival."""

    mode: str = "ok"
    reply: dict[str, Any] | None = None
    keepalive_timeout: float = 75.0  # aiohttp's default: how long an idle connection is kept
    peers: list[int] = field(default_factory=list)  # the client port of each beat's connection
    beats: list[Beat] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    runner: web.AppRunner | None = None
    url: str = ""
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handle(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        self.peers.append(peer[1] if peer else -1)
        body = await request.json()
        self.beats.append(Beat(time.monotonic(), body, dict(request.headers)))
        self._new.set()
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "500":
            return web.Response(status=500, text="boom")
        return web.json_response(self.reply or {})

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> FakeControlPlane:
        app = web.Application()
        app.router.add_post("/v1/heartbeat", self._handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1, keepalive_timeout=self.keepalive_timeout)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{port}/v1/heartbeat"
        return self

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Beat]:
        deadline = time.monotonic() + timeout
        while len(self.beats) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"only {len(self.beats)} of {count} beats arrived: {self.bodies()}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                continue
        return self.beats

    def bodies(self) -> str:
        return json.dumps([b.body.get("status") for b in self.beats])

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
