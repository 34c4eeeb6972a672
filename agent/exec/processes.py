"""Background processes: started now, inspected, fed, signalled and read later.

Each process keeps a rolling log of its most recent output (both streams, in arrival order,
addressed by byte offset since the start) so a reader can resume from the last offset it saw.
Finished processes stay listed for a bounded time and count, then are forgotten.

Memory is bounded whatever clients and processes do: all logs together hold at most
``processes_output_max_bytes`` (past it, the output of the oldest finished processes goes
first, then the oldest output of the biggest running ones; a reader is told what it missed),
and a process's stdin holds at most ``processes_stdin_max_bytes`` it has not read yet (a write
that does not fit is refused whole, before any of it is queued, so a retry never duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from agent.errors import InvalidArgument, PayloadTooLarge, ProcessNotFound, ProcessStateConflict
from agent.exec.output import Utf8Aligner
from agent.exec.pipes import feed_stdin, finish_pumps, pump
from agent.exec.runner import (
    Child,
    CommandSpec,
    Exit,
    ProgramNotFound,
    Stream,
    exit_of,
)

if TYPE_CHECKING:
    from agent.exec.service import ExecService

LOG = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 5.0


@dataclass(frozen=True, slots=True)
class Piece:
    offset: int  # of the first byte, counted over both streams since the process started
    stream: Stream
    data: bytes


class OutputBudget:
    """Bytes held by all output logs together; past ``limit``, ``shed`` frees some."""

    def __init__(self, limit: int | None, shed: Callable[[int], None] | None = None) -> None:
        self.limit = limit
        self.used = 0
        self.shed = shed

    def grew(self, delta: int) -> None:
        self.used += delta
        if self.limit is not None and self.used > self.limit and self.shed is not None:
            self.shed(self.used - self.limit)


class OutputLog:
    """The last ``limit`` bytes of a process's output, with waiters for new output."""

    def __init__(self, limit: int | None, budget: OutputBudget | None = None) -> None:
        self.limit = limit
        self.budget = budget if budget is not None else OutputBudget(None)
        self._pieces: deque[Piece] = deque()
        self.start = 0  # offset of the oldest byte still held
        self.end = 0  # offset after the newest byte
        self.size = 0
        self.totals: dict[Stream, int] = {"stdout": 0, "stderr": 0}
        self.closed = False
        self._changed = asyncio.Event()

    def append(self, stream: Stream, data: bytes) -> None:
        if not data:
            return
        self._pieces.append(Piece(self.end, stream, data))
        self.end += len(data)
        self.size += len(data)
        self.totals[stream] += len(data)
        before = self.size
        if self.limit is not None and self.size > self.limit:
            self.drop(self.size - self.limit)
        self.budget.grew(len(data) - (before - self.size))
        self._wake()

    def drop(self, count: int) -> int:
        """Forget the oldest ``count`` bytes held (readers resume past them); returns how many."""
        dropped = 0
        while self._pieces and dropped < count:
            first = self._pieces[0]
            excess = count - dropped
            if len(first.data) <= excess:
                self._pieces.popleft()
                dropped += len(first.data)
            else:
                self._pieces[0] = Piece(first.offset + excess, first.stream, first.data[excess:])
                dropped += excess
        self.size -= dropped
        self.start = self._pieces[0].offset if self._pieces else self.end
        return dropped

    def release(self, count: int) -> int:
        """``drop`` on behalf of the budget: frees the bytes in it too."""
        dropped = self.drop(count)
        self.budget.used -= dropped
        return dropped

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def read(self, offset: int) -> list[Piece]:
        """Everything held from ``offset`` on (from ``start`` when it was already dropped)."""
        offset = max(offset, self.start)
        out = []
        for piece in self._pieces:
            piece_end = piece.offset + len(piece.data)
            if piece_end <= offset:
                continue
            if piece.offset < offset:
                out.append(Piece(offset, piece.stream, piece.data[offset - piece.offset :]))
            else:
                out.append(piece)
        return out

    async def wait(self, offset: int) -> None:
        """Until there is output past ``offset`` or the log is closed."""
        while self.end <= offset and not self.closed:
            await self._changed.wait()

    def tail(self, stream: Stream, size: int) -> bytes:
        """The last ``size`` bytes of one stream still held."""
        parts: list[bytes] = []
        left = size
        for piece in reversed(self._pieces):
            if piece.stream != stream:
                continue
            parts.append(piece.data[-left:])
            left -= len(parts[-1])
            if left <= 0:
                break
        return b"".join(reversed(parts))


class ManagedProcess:
    def __init__(
        self,
        process_id: str,
        spec: CommandSpec,
        command: str | list[str],
        budget: OutputBudget | None = None,
        stdin_limit: int | None = None,
    ) -> None:
        self.id = process_id
        self.spec = spec
        self.command = command
        self.child: Child | None = None
        self.log = OutputLog(spec.max_output, budget)
        self.stdin_limit = stdin_limit
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.exit: Exit | None = None
        self.task: asyncio.Task[None] | None = None
        self.stdin_open = spec.keep_stdin_open

    @property
    def pid(self) -> int | None:
        return None if self.child is None else self.child.pid

    @property
    def state(self) -> Literal["running", "exited"]:
        return "running" if self.exit is None else "exited"

    def require_running(self) -> Child:
        if self.exit is not None or self.child is None:
            raise ProcessStateConflict(f"process {self.id} has already exited", details={"id": self.id})
        return self.child

    @property
    def stdin_pending(self) -> int:
        """Bytes written to stdin that the process has not read yet (queued in the agent)."""
        writer = None if self.child is None else self.child.stdin
        return 0 if writer is None else writer.transport.get_write_buffer_size()

    def write_stdin(self, data: bytes, eof: bool) -> None:
        """Queue ``data`` for the process's stdin, all of it or (refused) none of it.

        Queued bytes reach the process in order as it reads; at most ``stdin_limit`` wait in
        the agent. A write that does not fit is refused before anything is queued.
        """
        child = self.require_running()
        writer = child.stdin
        if writer is None or not self.stdin_open:
            raise ProcessStateConflict(f"the stdin of process {self.id} is closed", details={"id": self.id})
        if writer.transport.is_closing():
            self.stdin_open = False
            raise ProcessStateConflict(f"process {self.id} closed its stdin", details={"id": self.id})
        limit = self.stdin_limit
        if limit is not None and data:
            pending = self.stdin_pending
            details = {"id": self.id, "bytes": len(data), "pending": pending, "limit": limit}
            if len(data) > limit:
                raise PayloadTooLarge(
                    f"{len(data)} bytes for stdin is more than the {limit} a process's stdin buffer holds "
                    "(processes_stdin_max_bytes); send it in pieces",
                    details=details,
                )
            if pending + len(data) > limit:
                raise ProcessStateConflict(
                    f"process {self.id} has not read {pending} bytes of its stdin yet; {len(data)} more "
                    f"would exceed its stdin buffer of {limit} bytes (processes_stdin_max_bytes). "
                    "Nothing was written; retry once it reads",
                    details=details,
                )
        if data:
            writer.write(data)
        if eof:
            self.stdin_open = False
            writer.close()  # after what is queued has been written

    def send_signal(self, signum: int, group: bool) -> None:
        child = self.require_running()
        if group:
            child.signal_group(signum)
        else:
            child.signal_leader(signum)


def parse_signal(value: str | int) -> signal.Signals:
    """``TERM``, ``SIGTERM``, ``sigterm`` or ``15``."""
    try:
        if isinstance(value, int) or value.strip().isdigit():
            return signal.Signals(int(value))
        name = value.strip().upper()
        return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except (KeyError, ValueError):
        raise InvalidArgument(f"unknown signal {value!r}", details={"field": "signal"}) from None


class ProcessManager:
    def __init__(self, service: ExecService) -> None:
        self._service = service
        self._procs: dict[str, ManagedProcess] = {}
        self._housekeeping: asyncio.Task[None] | None = None
        self.budget = OutputBudget(service.config.processes_output_max_bytes, self._shed)
        # Called (on the event loop) with each process that has exited: the event stream's source.
        self.exit_listeners: list[Callable[[ManagedProcess], None]] = []

    def _shed(self, excess: int) -> None:
        """Free ``excess`` bytes of output: finished processes' (oldest first), then running ones'
        oldest output (biggest logs first). The processes stay listed; readers see the gap."""
        finished = sorted(
            (p for p in self._procs.values() if p.ended_at is not None), key=lambda p: p.ended_at or 0
        )
        running = sorted((p for p in self._procs.values() if p.ended_at is None), key=lambda p: -p.log.size)
        for proc in finished + running:
            if excess <= 0:
                return
            excess -= proc.log.release(excess)

    async def start(self) -> None:
        self._housekeeping = asyncio.create_task(self._keep_house(), name="exec-processes")

    async def close(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        tasks = []
        for proc in self._procs.values():
            if proc.child is not None and proc.child.running:
                proc.child.kill_now()
            if proc.task is not None:
                tasks.append(proc.task)
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep_house(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            self.prune()

    def prune(self) -> None:
        """Forget finished processes past the configured age, then the oldest past the count."""
        config = self._service.config
        horizon = time.time() - config.processes_keep_seconds
        finished = [p for p in self._procs.values() if p.ended_at is not None]
        for proc in finished:
            assert proc.ended_at is not None
            if proc.ended_at < horizon:
                self._forget(proc)
        finished = sorted(
            (p for p in self._procs.values() if p.ended_at is not None), key=lambda p: p.ended_at or 0
        )
        for proc in finished[: max(0, len(finished) - config.processes_keep_count)]:
            self._forget(proc)

    def _forget(self, proc: ManagedProcess) -> None:
        del self._procs[proc.id]
        proc.log.release(proc.log.size)

    def get(self, process_id: str) -> ManagedProcess:
        try:
            return self._procs[process_id]
        except KeyError:
            raise ProcessNotFound(f"no process {process_id!r}", details={"id": process_id}) from None

    def all(self) -> list[ManagedProcess]:
        self.prune()
        return list(self._procs.values())

    async def launch(self, spec: CommandSpec, command: str | list[str]) -> ManagedProcess:
        """Start ``spec`` in the background; a missing program is an exited process (127)."""
        service = self._service
        service.slots.acquire()
        config = service.config
        proc = ManagedProcess(
            secrets.token_hex(6), spec, command, self.budget, config.processes_stdin_max_bytes
        )
        try:
            proc.child = await service.spawn(spec)
        except ProgramNotFound as exc:
            service.slots.release()
            proc.log.append("stderr", exc.message.encode())
            proc.log.close()
            proc.exit = Exit(exc.exit_code, None, False, 0.0)
            proc.ended_at = time.time()
            self._exited(proc)
        except BaseException:
            service.slots.release()
            raise
        else:
            proc.task = asyncio.create_task(self._supervise(proc, proc.child), name=f"process-{proc.id}")
        self.prune()
        self._procs[proc.id] = proc
        return proc

    async def _supervise(self, proc: ManagedProcess, child: Child) -> None:
        service = self._service
        started = time.perf_counter()
        log = proc.log

        async def sink_for(stream: Stream, reader: asyncio.StreamReader | None) -> None:
            aligner = Utf8Aligner()

            async def put(data: bytes) -> None:
                log.append(stream, aligner.feed(data))

            try:
                await pump(reader, put)
            finally:
                log.append(stream, aligner.flush())

        pumps = [
            asyncio.create_task(sink_for("stdout", child.stdout)),
            asyncio.create_task(sink_for("stderr", child.stderr)),
        ]
        feeder = None
        if proc.spec.stdin:
            feeder = asyncio.create_task(feed_stdin(child, proc.spec.stdin, close=False))
        try:
            code = await child.wait(service.clamp_timeout(proc.spec.timeout))
            await finish_pumps(pumps, child, service.leftovers)
            proc.exit = exit_of(code, timed_out=child.timed_out, started=started)
        finally:
            service.slots.release()
            if feeder is not None:
                feeder.cancel()
            if child.running:
                child.kill_now()
            proc.stdin_open = False
            proc.ended_at = time.time()
            if proc.exit is None:
                proc.exit = Exit(-1, None, False, round((time.perf_counter() - started) * 1000, 3))
            log.close()
            LOG.info("background process %s (pid %d) ended", proc.id, child.pid)
            self._exited(proc)

    def _exited(self, proc: ManagedProcess) -> None:
        for listener in list(self.exit_listeners):
            try:
                listener(proc)
            except Exception:  # a listener's bug must not break process supervision
                LOG.exception("process exit listener failed")


async def follow(log: OutputLog, offset: int, *, wait: bool) -> AsyncIterator[Piece]:
    """Pieces from ``offset`` on; with ``wait``, new ones as they come until the log closes."""
    while True:
        pieces = log.read(offset)
        for piece in pieces:
            yield piece
            offset = piece.offset + len(piece.data)
        offset = max(offset, log.start)
        if not wait or (log.closed and offset >= log.end):
            return
        await log.wait(offset)
