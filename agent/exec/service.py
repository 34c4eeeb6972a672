"""The exec service: run a command to completion, stream one, or keep one in the background.

One object per agent (``Services.exec``), owning the concurrency limit, the reaper, the
background-process table and every pipe still being read, so that ``close()`` can end them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass

from agent.config import Config
from agent.errors import TooManyRequests
from agent.exec.cgroups import Confiner, Limits
from agent.exec.output import Capture, Utf8Aligner
from agent.exec.pipes import Detachable, PipeDrain, feed_stdin, pump
from agent.exec.processes import ProcessManager
from agent.exec.reaper import Reaper
from agent.exec.runner import (
    DRAIN,
    Child,
    CommandResult,
    CommandSpec,
    Exit,
    ProgramNotFound,
    Stream,
    exit_of,
    spawn,
)
from agent.session.user import DesktopUser, merge_environment, resolve_user, session_environment

STREAM_QUEUE = 8  # chunks in flight between the pipes and a slow HTTP client
COALESCE_MAX = 4 << 20  # bytes joined into one stream event


@dataclass(frozen=True, slots=True)
class Started:
    pid: int | None


@dataclass(frozen=True, slots=True)
class Chunk:
    stream: Stream
    data: bytes


@dataclass(frozen=True, slots=True)
class Finished:
    exit: Exit
    stdout_truncated: bool
    stderr_truncated: bool
    stdout_bytes: int
    stderr_bytes: int


Event = Started | Chunk | Finished


class Slots:
    """Counts running commands; past the limit a new one is refused with 429 + Retry-After."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def acquire(self) -> None:
        if self.used >= self.limit:
            raise TooManyRequests(
                f"{self.limit} commands are already running (exec_max_processes); retry shortly",
                details={"limit": self.limit},
                retry_after=1.0,
            )
        self.used += 1

    def release(self) -> None:
        self.used -= 1

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


class ExecService:
    def __init__(self, config: Config, user: DesktopUser | None = None) -> None:
        self.config = config
        self.user = user if user is not None else resolve_user(config.desktop_user)
        self.reaper = Reaper()
        limits = Limits(config.exec_max_tasks, config.exec_memory_max)
        # With --exec false nothing runs commands: leave the machine's cgroups alone.
        self.confiner = (
            Confiner.detect(limits) if config.exec_enabled else Confiner("none", (), limits, "exec is off")
        )
        self.slots = Slots(config.exec_max_processes)
        self.leftovers = Detachable()
        self.processes = ProcessManager(self)
        # A plain copy: reading os.environ decodes every variable, on every command.
        self._base_env = dict(os.environ)

    async def start(self) -> None:
        await self.reaper.start()
        await self.confiner.start()
        await self.processes.start()

    async def close(self) -> None:
        await self.processes.close()
        await self.leftovers.close()
        await self.confiner.close()
        await self.reaper.close()

    def environment(self, spec: CommandSpec) -> dict[str, str]:
        session = session_environment(self.user, self.config.display, self._base_env)
        return merge_environment(session, spec.env)

    def clamp_timeout(self, timeout: float | None) -> float | None:
        if timeout is None:
            return None
        return min(timeout, self.config.exec_max_timeout)

    async def spawn(self, spec: CommandSpec, *, readers: bool = True) -> Child:
        return await spawn(
            spec, self.user, self.environment(spec), self.reaper, self.confiner, readers=readers
        )

    async def run(self, spec: CommandSpec) -> CommandResult:
        """Run to completion and capture both streams up to ``max_output`` bytes each."""
        started = time.perf_counter()
        with self.slots.hold():
            try:
                child = await self.spawn(spec, readers=False)
            except ProgramNotFound as exc:
                return CommandResult(
                    b"",
                    exc.message.encode(),
                    Exit(exc.exit_code, None, False, _ms(started)),
                    False,
                    False,
                    None,
                )
            out, err = Capture(spec.max_output), Capture(spec.max_output)
            drains = [PipeDrain(child.raw_pipes[0], out), PipeDrain(child.raw_pipes[1], err)]
            feeder = None
            if child.stdin is not None:
                feeder = asyncio.create_task(feed_stdin(child, spec.stdin, close=True))
            try:
                code = await child.wait(self.clamp_timeout(spec.timeout))
                child.close_stdin()
                _, pending = await asyncio.wait([d.done for d in drains], timeout=DRAIN)
                out_value, err_value = out.value(), err.value()
                if pending:  # something the command left behind still holds a pipe
                    self.leftovers.adopt_drains(drains)
            except BaseException:
                if child.running:
                    child.kill_now()
                for drain in drains:
                    drain.close()
                raise
            finally:
                if feeder is not None:
                    feeder.cancel()
        return CommandResult(
            out_value,
            err_value,
            exit_of(code, timed_out=child.timed_out, started=started),
            out.truncated,
            err.truncated,
            child.pid,
        )

    async def stream(self, spec: CommandSpec) -> AsyncGenerator[Event, None]:
        """Started, then output chunks as they come (UTF-8 aligned), then Finished.

        Closing the iterator early (the client went away) kills the process group.
        """
        started = time.perf_counter()
        with self.slots.hold():
            try:
                child = await self.spawn(spec)
            except ProgramNotFound as exc:
                yield Started(None)
                yield Chunk("stderr", exc.message.encode())
                yield Finished(Exit(exc.exit_code, None, False, _ms(started)), False, False, 0, 0)
                return
            yield Started(child.pid)
            relay = _Relay(child, spec.max_output)
            feeder = asyncio.create_task(feed_stdin(child, spec.stdin, close=True))
            waiter = asyncio.create_task(child.wait(self.clamp_timeout(spec.timeout)))
            try:
                async for chunk in relay.chunks(waiter):
                    yield chunk
                code = await waiter
                yield Finished(
                    exit_of(code, timed_out=child.timed_out, started=started),
                    relay.counters["stdout"].truncated,
                    relay.counters["stderr"].truncated,
                    relay.counters["stdout"].total,
                    relay.counters["stderr"].total,
                )
            finally:
                feeder.cancel()
                if child.running:
                    child.kill_now()
                    waiter.cancel()
                self.leftovers.adopt(relay.detach(), child)


_WAKE = Chunk("stdout", b"")  # queued (by identity) when the leader exits
_EOF = Chunk("stdout", b"")  # a pipe's end, held back while joining chunks


class _Relay:
    """Both pipes of a child into one bounded queue, in arrival order, with backpressure.

    A slow reader of the stream fills the queue, the pumps stop reading, the pipes fill and the
    command blocks on write: memory stays bounded and nothing is dropped.
    """

    def __init__(self, child: Child, limit: int | None) -> None:
        self.limit = limit
        self.queue: asyncio.Queue[Chunk | None] = asyncio.Queue(STREAM_QUEUE)
        self.counters: dict[Stream, Capture] = {"stdout": Capture(0), "stderr": Capture(0)}
        self.detached = False
        self.pumps = [
            asyncio.create_task(self._pump("stdout", child.stdout)),
            asyncio.create_task(self._pump("stderr", child.stderr)),
        ]

    async def _pump(self, stream: Stream, reader: asyncio.StreamReader | None) -> None:
        aligner = Utf8Aligner()
        counter = self.counters[stream]

        async def put(data: bytes) -> None:
            before = counter.total
            counter.total += len(data)
            if self.detached:
                return
            if self.limit is not None:
                room = self.limit - before
                if len(data) > room:
                    counter.truncated = True
                    data = data[: max(room, 0)]
            data = aligner.feed(data)
            if data:
                await self.queue.put(Chunk(stream, data))

        try:
            await pump(reader, put)
        finally:
            tail = aligner.flush()
            if not self.detached:
                if tail:
                    await self.queue.put(Chunk(stream, tail))
                await self.queue.put(None)

    async def chunks(self, leader: asyncio.Task[int]) -> AsyncIterator[Chunk]:
        """Chunks until both pipes close, or DRAIN seconds after the leader exited.

        Chunks already queued from the same stream are joined into one, so a fast producer
        costs one event per burst, not one per pipe read.
        """
        loop = asyncio.get_running_loop()
        leader.add_done_callback(self._leader_done)
        open_pipes = 2
        deadline: float | None = None
        held: Chunk | None = None
        item: Chunk | None
        while open_pipes:
            if deadline is None and leader.done():
                deadline = loop.time() + DRAIN
            if held is not None:
                item, held = held, None
            elif deadline is None:
                item = await self.queue.get()
            else:
                try:
                    item = await asyncio.wait_for(self.queue.get(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    return
            if item is _WAKE:
                continue
            if item is None or item is _EOF:
                open_pipes -= 1
                continue
            parts = [item.data]
            size = len(item.data)
            while size < COALESCE_MAX and not self.queue.empty():
                following = self.queue.get_nowait()
                if following is None or following is _WAKE or following.stream != item.stream:
                    held = following if following is not None else _EOF
                    break
                parts.append(following.data)
                size += len(following.data)
            yield item if len(parts) == 1 else Chunk(item.stream, b"".join(parts))

    def _leader_done(self, _: asyncio.Task[int]) -> None:
        # Wake a consumer blocked on an empty queue so it can start the drain clock.
        if self.queue.empty():
            self.queue.put_nowait(_WAKE)

    def detach(self) -> list[asyncio.Task[None]]:
        """Stop queueing (pumps read on, to nowhere, until EOF) and hand back the pump tasks."""
        self.detached = True
        while not self.queue.empty():
            self.queue.get_nowait()
        return self.pumps


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
