"""Moving bytes between a command's pipes and the agent: reading into captures or sinks,
feeding stdin, and the pipes that outlive their command's answer.

A pipe still open after the command's leader exited belongs to something the command left in
the background (``firefox &``). It is read to nowhere until it closes, so that program neither
blocks on a full pipe nor dies of SIGPIPE, and closed at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Awaitable, Callable
from typing import IO

from agent.exec.output import Capture
from agent.exec.runner import DRAIN, READ_CHUNK, Child


class PipeDrain:
    """Reads a pipe into a ``Capture`` from an event-loop reader callback.

    The cheap path for ``/exec``: no transport, protocol or task per pipe, which is a good part
    of the per-command cost when the command is ``true``.
    """

    def __init__(self, pipe: IO[bytes] | None, capture: Capture) -> None:
        self._loop = asyncio.get_running_loop()
        self.capture = capture
        self.done: asyncio.Future[None] = self._loop.create_future()
        self._pipe = pipe
        if pipe is None:
            self.done.set_result(None)
            return
        self._fd = pipe.fileno()
        os.set_blocking(self._fd, False)
        self._loop.add_reader(self._fd, self._ready)

    def _ready(self) -> None:
        try:
            data = os.read(self._fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self.capture.feed(data)
        else:
            self.close()

    def close(self) -> None:
        if self._pipe is None or self.done.done():
            return
        self._loop.remove_reader(self._fd)
        self._pipe.close()
        self.done.set_result(None)


Sink = Callable[[bytes], Awaitable[None]]


async def pump(reader: asyncio.StreamReader | None, sink: Sink) -> None:
    """Copy a pipe into ``sink`` until EOF."""
    if reader is None:
        return
    while True:
        chunk = await reader.read(READ_CHUNK)
        if not chunk:
            return
        await sink(chunk)


async def feed_stdin(child: Child, data: bytes | None, *, close: bool) -> None:
    """Write ``data`` to the command's stdin; a command that stops reading is not an error."""
    writer = child.stdin
    if writer is None:
        return
    try:
        if data:
            writer.write(data)
            await writer.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        if close:
            writer.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await writer.wait_closed()


class Detachable:
    """Pipes of exited commands still held open by their leftovers, read to nowhere until EOF."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._children: dict[asyncio.Task[None], Child] = {}
        self._drains: set[PipeDrain] = set()

    def adopt_drains(self, drains: list[PipeDrain]) -> None:
        for drain in drains:
            if not drain.done.done():
                drain.capture.close()  # from now on: read to nowhere
                self._drains.add(drain)
                drain.done.add_done_callback(functools.partial(self._forget_drain, drain))

    def _forget_drain(self, drain: PipeDrain, _: asyncio.Future[None]) -> None:
        self._drains.discard(drain)

    def adopt(self, tasks: list[asyncio.Task[None]], child: Child) -> None:
        for task in tasks:
            if not task.done():
                self._tasks.add(task)
                self._children[task] = child
                task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._children.pop(task, None)

    def __len__(self) -> int:
        return len(self._tasks) + len(self._drains)

    async def close(self) -> None:
        for drain in list(self._drains):
            drain.close()
        for child in set(self._children.values()):
            child.close_pipes()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def finish_pumps(pumps: list[asyncio.Task[None]], child: Child, leftovers: Detachable) -> bool:
    """Wait up to DRAIN for the pipes to close; True if they did, else hand them to ``leftovers``."""
    child.close_stdin()
    _, pending = await asyncio.wait(pumps, timeout=DRAIN)
    if pending:
        leftovers.adopt(list(pending), child)
        return False
    for task in pumps:
        task.result()  # re-raise a pump's bug instead of losing output silently
    return True
