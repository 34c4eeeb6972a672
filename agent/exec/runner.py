"""Running one command: spawn it in its own session and cgroup, and end it cleanly.

Every command is the leader of a new session and process group, and lives in a cgroup of its
own (``agent.exec.cgroups``), so "the command" is everything it started, ``setsid`` children
included: a timeout or a disconnect sends SIGTERM to the group and the cgroup, then SIGKILL to
all of it after a grace period. The leader's exit arrives through a pidfd and it is reaped at
once; orphans are reaped by the ``Reaper``. Moving bytes through the pipes is
``agent.exec.pipes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from agent.errors import InvalidArgument, Unavailable
from agent.exec.cgroups import MARKER_VARIABLE, CommandCgroup, Confiner, joiner, marked
from agent.exec.reaper import Reaper
from agent.session.user import DesktopUser
from agent.supervision.oom import unprotect_child

LOG = logging.getLogger(__name__)

Stream = Literal["stdout", "stderr"]

KILL_GRACE = 1.0  # seconds between SIGTERM and SIGKILL
DRAIN = 0.25  # seconds to wait for pipes to close once the leader has exited
READ_CHUNK = 1 << 20
READ_LIMIT = 1 << 20  # a pipe is paused when 2x this is buffered: the memory bound per pipe
PIPE_SIZE = 1 << 20  # bigger pipes: fewer, larger reads when a command writes fast
F_SETPIPE_SZ = 1031
MAX_ARG_BYTES = 128 * 1024  # Linux MAX_ARG_STRLEN: the longest single argument exec accepts


@dataclass(frozen=True, slots=True)
class CommandSpec:
    argv: tuple[str, ...]
    cwd: str | None = None  # None: the desktop user's home
    env: Mapping[str, str | None] = field(default_factory=dict)
    stdin: bytes | None = None
    timeout: float | None = 60.0  # None: no deadline (background processes)
    max_output: int | None = 1 << 20  # bytes kept per stream; None: unlimited
    keep_stdin_open: bool = False  # background processes: stdin stays a pipe for later writes

    def describe(self) -> str:
        """The program name only: command lines may hold secrets and are never logged whole."""
        return os.path.basename(self.argv[0]) if self.argv else "?"


@dataclass(frozen=True, slots=True)
class Exit:
    exit_code: int
    signal: str | None
    timed_out: bool
    duration_ms: float


@dataclass(frozen=True, slots=True)
class CommandResult:
    stdout: bytes
    stderr: bytes
    exit: Exit
    stdout_truncated: bool
    stderr_truncated: bool
    pid: int | None


class ProgramNotFound(Exception):
    """The program could not be executed: answered like a shell would (127/126), never a 500."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


def bash_argv(command: str) -> tuple[str, ...]:
    if len(command.encode()) > MAX_ARG_BYTES - 1:
        raise InvalidArgument(
            "the command or script is longer than 128 KiB, the kernel's limit for one argument; "
            "upload it with PUT /files and run it by path"
        )
    return ("bash", "-c", command)


def exit_of(returncode: int, *, timed_out: bool, started: float) -> Exit:
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    if returncode < 0:
        try:
            name: str | None = signal.Signals(-returncode).name
        except ValueError:
            name = f"SIG{-returncode}"
        return Exit(128 - returncode, name, timed_out, duration_ms)
    return Exit(returncode, None, timed_out, duration_ms)


class Child:
    """A running command: the leader process of its own session and process group.

    We own the whole life cycle instead of using ``asyncio.create_subprocess_exec``: its
    ``wait()`` also waits for the pipes to close (so ``sleep 100 &`` would hold the answer) and
    its child watcher spends a thread per process. Here a pidfd tells the event loop the leader
    exited, and ``Popen.poll()`` reaps it at once.
    """

    def __init__(  # noqa: PLR0917
        self,
        popen: subprocess.Popen[bytes],
        stdin: asyncio.StreamWriter | None,
        stdout: asyncio.StreamReader | None,
        stderr: asyncio.StreamReader | None,
        transports: list[asyncio.BaseTransport],
        exited: asyncio.Future[int],
        reaper: Reaper,
        confinement: Confinement,
    ) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.pgid = popen.pid  # start_new_session: the leader's pid is the group id
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.exited = exited
        self.timed_out = False
        # The raw pipes, for callers that read them with PipeDrain instead of stream readers.
        self.raw_pipes = (popen.stdout, popen.stderr) if stdout is None else (None, None)
        self._transports = transports
        self._reaper = reaper
        self.confinement = confinement

    @property
    def running(self) -> bool:
        return not self.exited.done()

    def signal_group(self, signum: int) -> bool:
        """Send ``signum`` to the group and everything else the command started (its cgroup);
        False when nothing of it is left."""
        others = self.confinement.members()
        for pid in others:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:
            return bool(others)
        except PermissionError:  # a member became another user (setuid): reach what we can
            if self.running:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(self.pid, signum)
        return True

    def signal_leader(self, signum: int) -> None:
        if self.running:  # never signal a pid that may have been reaped and reused
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    async def wait(self, timeout: float | None) -> int:
        """The leader's return code; past ``timeout`` the group is ended first."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.exited), timeout)
        except TimeoutError:
            self.timed_out = True
            return await self.terminate()

    async def terminate(self) -> int:
        """SIGTERM to the group, SIGKILL to whatever is left after the grace period."""
        LOG.info("ending process group %d", self.pgid)
        self._reaper.mark_killed(self.pgid)
        self.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            self._reaper.reap_once()
            if not self.running and not self.signal_group(0):
                break
        self.signal_group(signal.SIGKILL)
        await self.confinement.kill()
        code = await asyncio.shield(self.exited)
        await self.reap_leftovers()
        return code

    def kill_now(self) -> None:
        """SIGKILL the group and the cgroup without waiting (abort paths: disconnect,
        cancellation, shutdown); a task then catches what was forking at that moment."""
        self._reaper.mark_killed(self.pgid)
        self.signal_group(signal.SIGKILL)
        self.confinement.kill_soon()

    async def reap_leftovers(self) -> None:
        """Collect the group's killed orphans promptly, so ``ps`` shows nothing of it."""
        for _ in range(10):
            self._reaper.reap_once()
            if not self.signal_group(0):
                return
            await asyncio.sleep(0.02)

    def close_pipes(self) -> None:
        for transport in self._transports:
            transport.close()

    def close_stdin(self) -> None:
        if self.stdin is not None:
            self.stdin.close()


class Confinement:
    """What holds one command's processes: its cgroup, or (without cgroups) a marker variable
    its descendants inherit, found again by a sweep of /proc."""

    _pending: set[asyncio.Task[None]] = set()  # kills still running, referenced until done

    def __init__(self, cgroup: CommandCgroup | None, marker: str | None) -> None:
        self.cgroup = cgroup
        self.marker = marker

    @classmethod
    def create(cls, confiner: Confiner | None, env: dict[str, str]) -> Confinement:
        cgroup = confiner.create() if confiner is not None else None
        marker = None
        if cgroup is None and confiner is not None:
            marker = secrets.token_hex(8)
            env[MARKER_VARIABLE] = marker
        return cls(cgroup, marker)

    def members(self) -> list[int]:
        if self.cgroup is not None:
            return self.cgroup.members()
        return marked(self.marker) if self.marker is not None else []

    async def kill(self) -> None:
        if self.cgroup is not None:
            self.cgroup.settled = True
            await self.cgroup.kill()
            with contextlib.suppress(OSError):  # the janitor tries again
                self.cgroup.remove()
            return
        for _ in range(10):
            pids = self.members()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.02)

    def kill_soon(self) -> None:
        if self.cgroup is not None:
            self.cgroup.settled = True
            self.cgroup.kill_now()
        elif self.marker is None:
            return
        task = asyncio.get_running_loop().create_task(self.kill())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def join_script(self) -> str | None:
        return None if self.cgroup is None else self.cgroup.join_script()

    def joiner(self) -> tuple[list[int], Callable[[], None] | None]:
        if self.cgroup is None:
            return [], None
        fds = self.cgroup.join_descriptors()
        return fds, joiner(fds)

    def release(self) -> None:
        """After the leader exited (or never started): from now on the janitor may remove the
        cgroup once empty; at once if nothing else of it is left."""
        if self.cgroup is None:
            return
        self.cgroup.settled = True
        if not self.cgroup.members():
            with contextlib.suppress(OSError):
                self.cgroup.remove()


async def spawn(
    spec: CommandSpec,
    user: DesktopUser,
    env: dict[str, str],
    reaper: Reaper,
    confiner: Confiner | None = None,
    *,
    readers: bool = True,
) -> Child:
    """Start ``spec`` as the leader of a new session in a cgroup of its own; ProgramNotFound
    when it cannot exec.

    ``readers=False`` leaves stdout and stderr as raw pipes (``Child.raw_pipes``) for PipeDrain.
    """
    if not spec.argv or not spec.argv[0]:
        raise InvalidArgument("command: empty")
    cwd = spec.cwd or user.workdir
    _check_exec_strings(spec, env, cwd)
    confinement = Confinement.create(confiner, env)
    try:
        popen = _start(spec, user, env, cwd, confinement)
    except _CannotJoin as exc:
        assert confiner is not None
        confiner.disable(f"a command could not join its cgroup: {exc}")
        confinement = Confinement.create(confiner, env)
        popen = _start(spec, user, env, cwd, confinement)
    LOG.debug("started %s as pid %d", spec.describe(), popen.pid)
    unprotect_child(popen.pid)  # it inherited the agent's OOMScoreAdjust; the agent should outlive it
    try:
        return await _attach(popen, reaper, readers, confinement)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait()
        confinement.kill_soon()
        raise


class _CannotJoin(Exception):
    """The kernel refused to move a new command into its cgroup."""


def _start(
    spec: CommandSpec, user: DesktopUser, env: dict[str, str], cwd: str, confinement: Confinement
) -> subprocess.Popen[bytes]:
    """Popen, with the child joining its cgroup before it execs the command.

    Switching to the desktop user already makes CPython fork (not vfork), so the join is a
    ``preexec_fn``. Without a switch, a preexec_fn would cost the vfork (a fork of the whole
    agent: ~10 ms a command); there ``/bin/sh`` joins (it runs with the agent's rights) and
    execs the command, and a missing program is found beforehand, as exec would.
    """
    argv = spec.argv
    fds: list[int] = []
    join: Callable[[], None] | None = None
    script = None if user.switch else confinement.join_script()
    if script is not None:
        _check_program(spec.argv[0], cwd, env)
        argv = ("/bin/sh", "-c", script, *spec.argv)
    else:
        try:
            fds, join = confinement.joiner()
        except OSError as exc:
            confinement.release()
            raise _CannotJoin(exc.strerror) from None
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if spec.stdin is not None or spec.keep_stdin_open else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
            user=user.uid if user.switch else None,
            group=user.gid if user.switch else None,
            extra_groups=list(user.groups) if user.switch else None,
            # Only os.write() on descriptors opened beforehand: no lock another thread may hold.
            preexec_fn=join,  # noqa: PLW1509
        )
    except OSError as exc:
        confinement.release()
        raise _exec_error(exc, spec, cwd) from None
    except subprocess.SubprocessError as exc:  # raised only when preexec_fn (the join) failed
        confinement.release()
        raise _CannotJoin(str(exc)) from None
    finally:
        for fd in fds:
            os.close(fd)


def _check_program(program: str, cwd: str, env: Mapping[str, str]) -> None:
    """ProgramNotFound (127, or 126 when not executable) as exec would say, before a shell execs it."""
    if "/" in program:
        path = os.path.join(cwd, program)
        if not os.path.exists(path):
            raise ProgramNotFound(127, f"{program}: command not found\n")
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise ProgramNotFound(126, f"{program}: cannot execute: Permission denied\n")
    elif shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise ProgramNotFound(127, f"{program}: command not found\n")


def _check_exec_strings(spec: CommandSpec, env: dict[str, str], cwd: str) -> None:
    """What exec(2) cannot take is the caller's mistake (400), not an internal error."""
    if any("\x00" in arg for arg in spec.argv):
        raise InvalidArgument("command: contains a NUL character", details={"field": "command"})
    if "\x00" in cwd:
        raise InvalidArgument("cwd: contains a NUL character", details={"field": "cwd"})
    for key, value in env.items():
        if not key or "=" in key or "\x00" in key or "\x00" in value:
            raise InvalidArgument(
                f"env: {key!r} is not a valid variable (no '=', no NUL, not empty)", details={"field": "env"}
            )


def _exec_error(exc: OSError, spec: CommandSpec, cwd: str) -> Exception:
    if exc.filename is not None and os.fspath(exc.filename) == cwd:
        return InvalidArgument(f"cwd {cwd!r}: {exc.strerror}", details={"field": "cwd"})
    if isinstance(exc, FileNotFoundError):
        return ProgramNotFound(127, f"{spec.argv[0]}: command not found\n")
    if exc.errno == errno.E2BIG:
        return InvalidArgument("the command line or environment is too long for exec")
    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM):
        return Unavailable(f"cannot start a process right now: {exc.strerror}", retry_after=1.0)
    return ProgramNotFound(126, f"{spec.argv[0]}: cannot execute: {exc.strerror}\n")


def _protocol_factory(reader: asyncio.StreamReader) -> Callable[[], asyncio.StreamReaderProtocol]:
    return lambda: asyncio.StreamReaderProtocol(reader)


async def _attach(
    popen: subprocess.Popen[bytes], reaper: Reaper, with_readers: bool, confinement: Confinement
) -> Child:
    """Connect the pipes and the exit notification of a fresh child to the event loop."""
    loop = asyncio.get_running_loop()
    transports: list[asyncio.BaseTransport] = []
    readers: list[asyncio.StreamReader | None] = [None, None]
    for index, pipe in enumerate((popen.stdout, popen.stderr)):
        assert pipe is not None
        with contextlib.suppress(OSError):  # over the user's pipe quota: keep the default
            fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
        if not with_readers:
            continue
        reader = asyncio.StreamReader(limit=READ_LIMIT)
        transport, _ = await loop.connect_read_pipe(_protocol_factory(reader), pipe)
        transports.append(transport)
        readers[index] = reader
    writer = None
    if popen.stdin is not None:
        w_transport, w_protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), popen.stdin
        )
        transports.append(w_transport)
        writer = asyncio.StreamWriter(w_transport, w_protocol, None, loop)
    exited: asyncio.Future[int] = loop.create_future()
    pidfd = os.pidfd_open(popen.pid)

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        code = popen.wait()  # the pidfd is readable: the child is a zombie, this does not block
        confinement.release()
        if not exited.done():
            exited.set_result(code)

    loop.add_reader(pidfd, on_exit)
    return Child(popen, writer, readers[0], readers[1], transports, exited, reaper, confinement)
