"""Launching desktop applications: detached, as the desktop user, in the session's environment.

Why not ``/exec``: an app outlives the request and the agent. Each app is the leader of its own
session (no controlling terminal, its own process group, so nothing aimed at the agent's group
reaches it), starts in the user's home with the session's environment, and writes to its own
log file instead of a pipe that would break when the agent restarts. Under systemd each app is
moved into a transient scope of its own (``launch_scope``) so stopping the agent's unit spares it. The command line is split
with shell-like quoting and executed directly: there is no shell to inject into.

Zombies: the launched process is our child, and like any owner of a child we collect its exit
status (``poll()`` once a second while we have children). What it leaves behind when it forks
into the background is re-parented to the agent (a child subreaper) and reaped by the exec
family's ``Reaper``: there is no second reaper here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.config import ConfigError
from agent.errors import DeadlineExceeded, InvalidArgument, LaunchFailed, LaunchProgramNotFound, Unavailable
from agent.files.creds import file_executor
from agent.session.launch_scope import ScopeMover
from agent.session.user import DesktopUser, session_environment
from agent.supervision.oom import unprotect_child
from agent.x11.windows import WindowService

LOG = logging.getLogger(__name__)

KEEP_LOGS = 100  # newest per-app logs kept
LOG_TAIL = 2048  # bytes of an app's log returned when it dies before showing a window
POLL_INTERVAL = 0.05
PRUNE_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Launched:
    pid: int
    program: str
    log_path: str
    window_id: int | None = None


def default_log_dir(user: DesktopUser) -> Path:
    """``~/.local/state/computer-agent/launch``; for a user without a home (``nobody``), a
    fresh private folder in /tmp (an unpredictable name: nobody can plant a symlink there)
    handed to the user at once, rather than creating their nonexistent home as root."""
    if os.path.isdir(user.home):
        return Path(user.home) / ".local" / "state" / "computer-agent" / "launch"
    directory = tempfile.mkdtemp(prefix=f"computer-agent-launch-{user.uid}-")
    if user.switch:  # just made by root, 0700, in sticky /tmp: nobody else can have swapped it
        os.chown(directory, user.uid, user.gid)
    return Path(directory)


def check_log_dir(directory: Path) -> None:
    """Refuse at start a ``--launch-log-dir`` the agent cannot write: otherwise every launch
    would fail later, far from the cause."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".computer-agent-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"--launch-log-dir {directory}: cannot write there: {exc.strerror or exc}"
        ) from None


def parse_command(app: str) -> list[str]:
    """Split a command line like a shell would, without a shell; 400 on bad quoting."""
    try:
        argv = shlex.split(app)
    except ValueError as exc:
        raise InvalidArgument(
            f"app: cannot parse the command line: {exc}", details={"field": "app"}
        ) from None
    if not argv:
        raise InvalidArgument("app: empty command line", details={"field": "app"})
    return argv


def resolve_program(program: str, path: str) -> str:
    """The executable to run: 404 when there is no such program, 400 when it cannot run."""
    if "/" in program:
        candidate = os.path.expanduser(program)
        if not os.path.exists(candidate):
            raise LaunchProgramNotFound(f"app: no program at {program}", details={"program": program})
        if os.path.isdir(candidate) or not os.access(candidate, os.X_OK):
            raise InvalidArgument(f"app: {program} is not an executable file", details={"program": program})
        return candidate
    found = shutil.which(program, path=path)
    if found is None:
        raise LaunchProgramNotFound(
            f"app: no program named {program!r} on the session's PATH",
            details={"program": program, "path": path},
        )
    return found


class Launcher:
    """Starts apps for the desktop user and, on request, waits for their first window."""

    def __init__(
        self,
        user: DesktopUser,
        display: str,
        windows: WindowService,
        *,
        log_dir: Path | None = None,
        base_env: dict[str, str] | None = None,
        scope: ScopeMover | None = None,
    ) -> None:
        self._user = user
        self._display = display
        self._windows = windows
        if log_dir is not None:
            check_log_dir(log_dir)
        self._log_dir = log_dir or default_log_dir(user)
        # The default folder is the user's: it is written (and read back) as the user, so a
        # link they plant there leads only where they could write themselves. An operator's
        # folder is trusted and written as the agent, each log then given to the user.
        self._log_threads = file_executor(user, workers=1) if log_dir is None and user.switch else None
        self._base_env = base_env
        self._scope = scope  # under systemd: moves each app out of the agent's unit
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._pruner: asyncio.Task[None] | None = None
        # Called with (pid, program, exit code) when a launched app has exited; from any thread.
        self.exit_listeners: list[Callable[[int, str, int], None]] = []

    async def launch(self, app: str, *, wait_for_window: bool = False, timeout: float = 10.0) -> Launched:
        argv = parse_command(app)
        env = session_environment(self._user, self._display, self._base_env or os.environ)
        executable = resolve_program(argv[0], env.get("PATH", ""))
        before = {w.id for w in await self._windows.list_windows()} if wait_for_window else set()
        loop = asyncio.get_running_loop()
        log_fd, log_path = await loop.run_in_executor(
            self._log_threads, self._open_log, os.path.basename(argv[0])
        )
        launched = await loop.run_in_executor(None, self._spawn, argv, executable, env, log_fd, log_path)
        LOG.info("launched %s as pid %d", launched.program, launched.pid)
        self._watch()
        if self._scope is not None:
            await self._scope.move(launched.program, _process_tree(launched.pid))
        if not wait_for_window:
            return launched
        window = await self._wait_for_window(launched, before, timeout)
        return Launched(launched.pid, launched.program, launched.log_path, window)

    def _watch(self) -> None:
        """Collect our own children's exit status within a second of their exit (no zombies
        even while no further launch comes); orphans they leave are the Reaper's."""
        if self._pruner is None or self._pruner.done():
            self._pruner = asyncio.create_task(self._prune_while_children(), name="launcher-prune")

    async def _prune_while_children(self) -> None:
        while self._children:
            await asyncio.sleep(PRUNE_INTERVAL)
            self._prune()

    def _open_log(self, name: str) -> tuple[int, Path]:
        """A fresh log file, open for appending (on the log threads: as the user for their folder)."""
        try:
            path = self._new_log_path(name)
            fd = os.open(
                path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:  # the folder went away or became unwritable since start
            raise Unavailable(
                f"cannot write the app's log in {self._log_dir} (--launch-log-dir): {exc.strerror or exc}",
                details={"log_dir": str(self._log_dir)},
            ) from None
        return fd, path

    def _spawn(
        self, argv: list[str], executable: str, env: dict[str, str], log_fd: int, log_path: Path
    ) -> Launched:
        self._prune()
        switch = self._user.switch
        with open(log_fd, "ab", buffering=0) as log:
            if switch and self._log_threads is None:  # written as the agent: the user owns their logs
                os.fchown(log.fileno(), self._user.uid, self._user.gid)
            try:
                proc = subprocess.Popen(
                    argv,
                    executable=executable,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._user.workdir,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                    user=self._user.uid if switch else None,
                    group=self._user.gid if switch else None,
                    extra_groups=list(self._user.groups) if switch else None,
                )
            except OSError as exc:
                with contextlib.suppress(OSError):
                    log_path.unlink()
                raise InvalidArgument(
                    f"app: cannot start {argv[0]}: {exc.strerror}", details={"program": argv[0]}
                ) from None
        unprotect_child(proc.pid)  # it inherited the agent's OOMScoreAdjust; the agent should outlive it
        self._children[proc.pid] = proc
        return Launched(proc.pid, os.path.basename(argv[0]), str(log_path))

    def _new_log_path(self, name: str) -> Path:
        """A fresh log file path in the log folder (created if missing), pruning old logs."""
        directory = self._log_dir
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        logs = sorted(directory.glob("*.log"), key=lambda p: p.lstat().st_mtime)
        for old in logs[: max(0, len(logs) - KEEP_LOGS + 1)]:
            with contextlib.suppress(OSError):
                old.unlink()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64] or "app"
        return directory / f"{stamp}-{safe}-{os.urandom(3).hex()}.log"

    def _prune(self) -> None:
        """Forget (and reap, if the Reaper has not yet) children that have exited."""
        for pid, proc in list(self._children.items()):
            code = proc.poll()
            if code is not None:
                del self._children[pid]
                self._exited(pid, proc, code)

    def _exited(self, pid: int, proc: subprocess.Popen[bytes], code: int) -> None:
        args = proc.args
        program = os.path.basename(str(args[0] if isinstance(args, list | tuple) else args))
        for listener in list(self.exit_listeners):
            try:
                listener(pid, program, code)
            except Exception:  # a listener's bug must not break the launcher
                LOG.exception("app exit listener failed")

    def exit_code(self, pid: int) -> int | None:
        """The exit code of a launched child that has exited, else None."""
        proc = self._children.get(pid)
        return None if proc is None else proc.poll()

    async def _wait_for_window(self, launched: Launched, before: set[int], timeout: float) -> int:
        """The first managed window of the process tree; if the launched process exits 0 first
        (single-instance apps hand over to a running one), the first new window of anyone."""
        deadline = time.monotonic() + timeout
        exited_with: int | None = None
        while True:
            tree = _process_tree(launched.pid)
            windows = await self._windows.list_windows()
            for window in windows:
                # No "not in before" here: the X server reuses a closed client's ids.
                if window.pid is not None and window.pid in tree:
                    return window.id
            if exited_with is None:
                exited_with = self.exit_code(launched.pid)
                if exited_with is not None and exited_with != 0:
                    tail = await asyncio.get_running_loop().run_in_executor(
                        self._log_threads, _tail, launched.log_path
                    )
                    raise LaunchFailed(
                        f"{launched.program} exited with code {exited_with} before showing a window",
                        details={
                            "pid": launched.pid,
                            "exit_code": exited_with,
                            "log": tail,
                        },
                    )
            if exited_with == 0:
                fresh = [w.id for w in windows if w.id not in before]
                if fresh:
                    return fresh[-1]
            if time.monotonic() >= deadline:
                raise DeadlineExceeded(
                    f"{launched.program} (pid {launched.pid}) showed no window within {timeout:g}s "
                    "(it keeps running)",
                    details={"pid": launched.pid, "log_path": launched.log_path},
                )
            await asyncio.sleep(POLL_INTERVAL)

    async def close(self) -> None:
        """Apps outlive the agent: drop our handles without signalling them."""
        if self._log_threads is not None:
            self._log_threads.shutdown(wait=False)
        if self._scope is not None:
            await self._scope.close()
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        for proc in self._children.values():
            # Popen warns about running children it is garbage-collected with; these are
            # deliberately left running (the subreaper or init reaps them later).
            proc.returncode = proc.returncode if proc.returncode is not None else -1
        self._children.clear()


def _process_tree(pid: int) -> set[int]:
    import psutil  # ~1 MiB, 18 ms: loaded with the first launch, not by the idle agent

    try:
        parent = psutil.Process(pid)
        return {pid, *(child.pid for child in parent.children(recursive=True))}
    except psutil.Error:
        return {pid}


def _tail(path: str) -> str:
    """The end of an app's log (on the log threads: read as the user from their folder)."""
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - LOG_TAIL))
            return log.read().decode("utf-8", "replace")
    except OSError:
        return ""
