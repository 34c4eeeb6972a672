"""Noticing that a client went away, even while nothing is being written to it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

DISCONNECT_POLL = 0.2


@contextlib.asynccontextmanager
async def cancel_on_disconnect(request: web.Request) -> AsyncIterator[None]:
    """Cancel this handler when the client goes away, even while nothing is being written."""
    handler = asyncio.current_task()
    assert handler is not None

    async def watch() -> None:
        while True:
            await asyncio.sleep(DISCONNECT_POLL)
            transport = request.transport
            if transport is None or transport.is_closing():
                handler.cancel()
                return

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
