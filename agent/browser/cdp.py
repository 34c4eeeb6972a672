"""The Chrome DevTools Protocol spoken over ``--remote-debugging-pipe``.

Why a pipe and not a WebSocket: with ``--remote-debugging-pipe`` Chromium reads commands from
its fd 3 and writes replies and events to its fd 4, and opens no debugging port at all, so
neither the network nor a web page in the VM (nor another local user) can attach: only the
process holding the other ends of the pipes, the agent. Messages are JSON objects, each ended by
a NUL byte. One connection carries the browser's own commands and, in flattened mode
(``Target.attachToTarget`` with ``flatten: true``), every tab's, told apart by ``sessionId``.

The protocol is small enough (ids, replies, events) that a library would add a dependency and a
WebSocket layer we do not use; ``orjson`` parses the large replies (a page's HTML) fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import orjson

LOG = logging.getLogger(__name__)

Event = dict[str, Any]
Listener = Callable[[str, dict[str, Any], str | None], None]  # method, params, sessionId


class CdpError(Exception):
    """Chromium answered a command with an error (a bad parameter, a closed target...)."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.code = int(error.get("code", 0))
        self.text = str(error.get("message", "unknown error"))
        super().__init__(f"{method}: {self.text}")


class ConnectionClosed(Exception):
    """The pipe ended: the browser exited (crashed, was killed or closed by the user)."""


class _Reader(asyncio.Protocol):
    """Splits the bytes from Chromium's fd 4 into NUL-ended messages."""

    def __init__(self, deliver: Callable[[bytes], None], closed: Callable[[Exception | None], None]) -> None:
        self._buffer = bytearray()
        self._deliver = deliver
        self._closed = closed

    def data_received(self, data: bytes) -> None:
        start = len(self._buffer)
        self._buffer += data
        cut = 0
        end = self._buffer.find(b"\0", start)
        while end >= 0:
            self._deliver(bytes(self._buffer[cut:end]))
            cut = end + 1
            end = self._buffer.find(b"\0", cut)
        if cut:
            del self._buffer[:cut]

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed(exc)


class CdpConnection:
    """Commands with replies (``send``) and events (``listen``) over the two pipes."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._listeners: list[Listener] = []
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.ReadTransport | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, read_fd: int, write_fd: int) -> CdpConnection:
        """Wrap our ends of the pipes (``read_fd``: Chromium's fd 4, ``write_fd``: its fd 3)."""
        connection = cls()
        loop = asyncio.get_running_loop()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        connection._reader, _ = await loop.connect_read_pipe(
            lambda: _Reader(connection._message, connection._lost), os.fdopen(read_fd, "rb", buffering=0)
        )
        connection._writer, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(write_fd, "wb", buffering=0)
        )
        return connection

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every event; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        """Run one command and return its result; CdpError if Chromium refuses it,
        ConnectionClosed if the browser is gone (before or while it runs)."""
        if self.closed.is_set() or self._writer is None or self._writer.is_closing():
            raise ConnectionClosed("the browser's pipe is closed")
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = (method, future)
        try:
            self._writer.write(orjson.dumps(message) + b"\0")
            return await future
        finally:
            self._pending.pop(message_id, None)

    def _message(self, raw: bytes) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:  # orjson refuses a lone surrogate, which a page's strings may hold
                message = json.loads(raw)
            except ValueError:
                LOG.warning("chromium sent a message that is not JSON (%d bytes)", len(raw))
                return
        message_id = message.get("id")
        if message_id is not None:
            method, future = self._pending.get(message_id, ("", None))
            if future is None or future.done():
                return
            if "error" in message:
                future.set_exception(CdpError(method, message["error"]))
            else:
                future.set_result(message.get("result", {}))
            return
        method = message.get("method")
        if isinstance(method, str):
            for listener in list(self._listeners):
                try:
                    listener(method, message.get("params", {}), message.get("sessionId"))
                except Exception:  # one listener's bug must not starve the others
                    LOG.exception("CDP event listener failed on %s", method)

    def _lost(self, exc: Exception | None) -> None:
        self.closed.set()
        for method, future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionClosed(f"the browser exited during {method}"))
        self._pending.clear()
        for listener in list(self._listeners):
            with contextlib.suppress(Exception):
                listener("Connection.closed", {}, None)

    def close(self) -> None:
        """Close our ends of the pipes (Chromium exits when its command pipe closes)."""
        for transport in (self._writer, self._reader):
            if transport is not None:
                transport.close()
        self.closed.set()
