"""Every command in a cgroup of its own: bounded in tasks and memory, and ended as a whole.

A process group is not a container: ``setsid`` or a double fork leaves it, and nothing in it
bounds how many processes a command forks. A cgroup holds every descendant whatever it does
with sessions, carries ``pids`` and ``memory`` limits, and can be killed as one.

Where the cgroup comes from, best first:

* cgroup v2 (Debian 12, systemd): a child of the agent's own cgroup, which systemd delegates to
  it (``Delegate=yes`` in the units). Processes already in that cgroup move to a leaf first, as
  the v2 "no internal processes" rule requires, then ``pids`` and ``memory`` are enabled below it.
* cgroup v1 or hybrid (containers, CI, some sandboxes): a child in the ``pids``, ``memory`` and
  (for the kill) ``freezer`` hierarchies, each beneath the agent's own cgroup there.
* only a cgroup v2 hierarchy without the ``pids`` and ``memory`` controllers (a hybrid host's
  ``/sys/fs/cgroup/unified``, delegated by systemd even where the v1 controllers are not): a
  child there still holds every descendant and is killed as one, but carries no limits (said
  once in the log).
* none writable: the process group is killed as before, plus a sweep of every process that
  still carries the command's marker variable; no limits. Said once in the log.

The child joins its cgroup before it execs the command (a ``preexec_fn`` writes ``0`` to
``cgroup.procs`` descriptors the agent opened, or, when no user switch makes CPython fork anyway,
``/bin/sh`` writes it and execs the command), so nothing it starts runs outside, not even briefly.
Under each agent's own directory ``computer-agent.<pid>`` the commands' cgroups are ``cmd-<n>``;
the directory also caps all commands together (memory) and is removed when the agent stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import shlex
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

LOG = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
MARKER_VARIABLE = "COMPUTER_AGENT_COMMAND"  # set only without cgroups, for the sweep
FREEZE_WAIT = 1.0  # seconds to wait for a freezer to report FROZEN before killing regardless
KILL_ROUNDS = 50
AGENT_DIR_PREFIX = "computer-agent."

Kind = Literal["cgroup2", "cgroup1", "none"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_tasks: int
    memory_max: int  # bytes; 0: 3/4 of the machine's memory

    def memory_bytes(self) -> int:
        if self.memory_max:
            return self.memory_max
        return (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) * 3 // 4


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _members(procs_file: Path) -> list[int]:
    try:
        return [int(line) for line in procs_file.read_text().split()]
    except (OSError, ValueError):
        return []


def _kill_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


class CommandCgroup:
    """One command's cgroup: a directory (v2) or one per controller (v1)."""

    def __init__(self, kind: Kind, dirs: tuple[Path, ...], freezer: Path | None) -> None:
        self.kind = kind
        self.dirs = dirs  # dirs[0] lists the members
        self.freezer = freezer
        self.removed = False
        # Set once the leader exited or was killed. Before that an empty cgroup is one its
        # command has not joined yet (the join happens in the child, after mkdir), not one to remove.
        self.settled = False

    def join_descriptors(self) -> list[int]:
        """``cgroup.procs`` of each directory, opened for the child to write ``0`` to."""
        fds: list[int] = []
        try:
            for directory in self.dirs:
                fds.append(os.open(directory / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        return fds

    def join_script(self) -> str:
        """A ``sh -c`` script that moves the shell into this cgroup, then execs ``"$0" "$@"``
        (needs the agent's rights; exits 125 with the shell's message if the move is refused)."""
        moves = " && ".join(f"echo 0 > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.dirs)
        return f'{moves} || exit 125; exec "$0" "$@"'

    def members(self) -> list[int]:
        return _members(self.dirs[0] / "cgroup.procs")

    def signal_all(self, signum: int) -> None:
        _kill_all(self.members(), signum)

    def kill_now(self) -> None:
        """SIGKILL every member at once (v2: ``cgroup.kill``); forks racing it are caught by ``kill``."""
        if self.kind == "cgroup2" and (self.dirs[0] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                _write(self.dirs[0] / "cgroup.kill", "1")
                return
        self.signal_all(signal.SIGKILL)

    async def kill(self) -> None:
        """End every member, forks racing the kill included; returns once the cgroup is empty."""
        if self.removed:  # emptied and removed already (the leader's exit found nothing left)
            return
        if self.kind == "cgroup2" and (self.dirs[0] / "cgroup.kill").exists():
            self.kill_now()
        elif self.freezer is not None:
            await self._freeze_and_kill(self.freezer)
        for _ in range(KILL_ROUNDS):
            members = self.members()
            if not members:
                return
            _kill_all(members, signal.SIGKILL)
            await asyncio.sleep(0.02)
        LOG.warning("a command's cgroup %s still has members after SIGKILL", self.dirs[0])

    async def _freeze_and_kill(self, freezer: Path) -> None:
        """Frozen tasks cannot fork: kill them all, then thaw so the kills take effect."""
        state = freezer / "freezer.state"
        try:
            _write(state, "FROZEN")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + FREEZE_WAIT
            while state.read_text().strip() != "FROZEN" and loop.time() < deadline:
                await asyncio.sleep(0.01)
            _kill_all(_members(freezer / "cgroup.procs"), signal.SIGKILL)
        except OSError as exc:
            LOG.warning("cannot freeze %s: %s", freezer, exc)
        finally:
            with contextlib.suppress(OSError):
                _write(state, "THAWED")

    def remove(self) -> bool:
        """Remove the directories once empty; False while something still lives in them."""
        if self.removed:
            return True
        for directory in self.dirs:
            try:
                directory.rmdir()
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    return False
                raise
        self.removed = True
        return True


class Confiner:
    """Creates the commands' cgroups; detects once which kind this machine allows."""

    def __init__(
        self, kind: Kind, parents: tuple[Path, ...], limits: Limits, reason: str = "", *, limited: bool = True
    ) -> None:
        self.kind = kind
        self.parents = parents  # the agent's own directories (v1: pids, memory[, freezer])
        self.limits = limits
        self.reason = reason
        self.limited = limited  # False: a v2 hierarchy without controllers (membership and kill only)
        self._numbers = itertools.count(1)
        self._live: set[CommandCgroup] = set()
        self._janitor: asyncio.Task[None] | None = None

    @classmethod
    def detect(cls, limits: Limits, root: Path = CGROUP_ROOT) -> Confiner:
        name = f"{AGENT_DIR_PREFIX}{os.getpid()}"
        try:
            if (root / "cgroup.controllers").exists():
                confiner = cls("cgroup2", (_setup_v2(root, name, limits),), limits)
            else:
                confiner = cls("cgroup1", _setup_v1(root, name, limits), limits)
        except (OSError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            try:
                bare = cls("cgroup2", (_setup_v2_bare(root, name),), limits, reason, limited=False)
            except (OSError, ValueError) as bare_exc:
                reason += f"; cgroup v2 without controllers: {type(bare_exc).__name__}: {bare_exc}"
            else:
                LOG.warning(
                    "commands run in cgroups (cgroup2) below %s, which end them as a whole but carry no "
                    "tasks or memory limits (%s)",
                    bare.parents[0],
                    reason,
                )
                return bare
        else:
            LOG.info(
                "commands run in cgroups (%s) below %s: at most %d tasks and %d MiB each",
                confiner.kind,
                ", ".join(map(str, confiner.parents)),
                limits.max_tasks,
                limits.memory_bytes() >> 20,
            )
            return confiner
        LOG.warning(
            "no writable cgroup (%s): commands are ended by process group and a sweep of their "
            "descendants, without tasks or memory limits",
            reason,
        )
        return cls("none", (), limits, reason)

    def disable(self, reason: str) -> None:
        """Run without cgroups from now on (the kernel refused what detection allowed)."""
        if self.kind != "none":
            LOG.warning("%s; from now on commands run without cgroups or limits", reason)
            self.kind, self.reason = "none", reason

    def create(self) -> CommandCgroup | None:
        """A fresh cgroup with the limits set; None without cgroups (or when creating fails)."""
        if self.kind == "none":
            return None
        number = next(self._numbers)
        dirs = tuple(parent / f"cmd-{number}" for parent in self.parents)
        try:
            for directory in dirs:
                directory.mkdir()
            if self.limited:
                _limit(self.kind, dirs, self.limits)
        except OSError as exc:
            LOG.warning("cannot create a cgroup for a command (%s); running it without one", exc)
            for directory in dirs:
                with contextlib.suppress(OSError):
                    directory.rmdir()
            return None
        freezer = next((d for d in dirs if (d / "freezer.state").exists()), None)
        cgroup = CommandCgroup(self.kind, dirs, freezer)
        self._live.add(cgroup)
        return cgroup

    def collect(self) -> None:
        """Remove the cgroups of commands whose leader and every other process have ended."""
        for cgroup in list(self._live):
            try:
                if not cgroup.settled or cgroup.members() or not cgroup.remove():
                    continue
            except OSError as exc:
                LOG.warning("cannot remove cgroup %s: %s", cgroup.dirs[0], exc)
            self._live.discard(cgroup)

    async def start(self, interval: float = 2.0) -> None:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(interval)
                self.collect()

        if self.kind != "none":
            self._janitor = asyncio.create_task(sweep(), name="exec-cgroups")

    async def close(self) -> None:
        """Remove what is empty; what a command left running keeps its cgroup (and its limits)."""
        if self._janitor is not None:
            self._janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._janitor
        self.collect()
        if not self._live:
            for parent in self.parents:
                with contextlib.suppress(OSError):
                    parent.rmdir()


def _own_paths() -> dict[str, str]:
    """Controller (or "" for cgroup v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _sweep_stale(base: Path) -> None:
    """Directories of agents that died without cleaning up: removed when empty."""
    for stale in base.glob(f"{AGENT_DIR_PREFIX}*"):
        pid = stale.name.removeprefix(AGENT_DIR_PREFIX)
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for child in stale.glob("cmd-*"):
            with contextlib.suppress(OSError):
                child.rmdir()
        with contextlib.suppress(OSError):
            stale.rmdir()


def _mounts() -> list[tuple[str, str, Path, set[str]]]:
    """(filesystem type, root inside the hierarchy, mount point, super options) of each cgroup mount."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) >= 5 and len(tail) >= 3 and tail[0] in {"cgroup", "cgroup2"}:
            found.append((tail[0], fields[3], Path(fields[4]), set(tail[2].split(","))))
    return found


def _beneath(mount: Path, mount_root: str, own: str) -> Path:
    """Where the cgroup ``own`` is under a mount that shows the hierarchy from ``mount_root``
    (a container's mount often shows only its own part of the tree)."""
    relative = os.path.relpath(own, mount_root)
    return mount if relative == "." or relative.startswith("..") else mount / relative


def _base(root: Path, controller: str, own: str) -> Path:
    """The directory of the cgroup ``own``: of cgroup v2 mounted at ``root`` (``controller`` ""),
    or of the v1 hierarchy of ``controller`` mounted below ``root``."""
    for fstype, mount_root, mount, options in _mounts():
        wanted = mount == root if not controller else controller in options and mount.parent == root
        if wanted and fstype == ("cgroup" if controller else "cgroup2"):
            return _beneath(mount, mount_root, own)
    return (root / controller) / own.lstrip("/")


def _warn_unless_delegated(base: Path) -> None:
    """Under systemd, the agent's cgroup should be handed to it (``Delegate=yes``, which marks it
    with a ``delegate`` xattr); otherwise systemd may undo what the agent sets up below it."""
    if not Path("/run/systemd/system").exists():
        return
    for name in ("trusted.delegate", "user.delegate"):
        with contextlib.suppress(OSError):
            if os.getxattr(base, name):
                return
    LOG.warning(
        "%s is not delegated to the agent (Delegate=yes in its unit); systemd may undo its cgroups", base
    )


def _setup_v2(root: Path, name: str, limits: Limits) -> Path:
    base = _base(root, "", _own_paths()[""])
    available = (base / "cgroup.controllers").read_text().split()
    missing = {"pids", "memory"} - set(available)
    if missing:
        raise ValueError(f"{base} does not offer the {' and '.join(sorted(missing))} controller(s)")
    _warn_unless_delegated(base)
    _sweep_stale(base)
    enabled = (base / "cgroup.subtree_control").read_text().split()
    if not {"pids", "memory"} <= set(enabled):
        try:
            _write(base / "cgroup.subtree_control", "+pids +memory")
        except OSError as exc:
            # "No internal processes" (never the true root, which is exempt): the processes of
            # the agent's own cgroup (its delegated unit) move to a leaf of their own first.
            if exc.errno != errno.EBUSY:
                raise
            leaf = base / "agent"
            leaf.mkdir(exist_ok=True)
            for pid in _members(base / "cgroup.procs"):
                with contextlib.suppress(ProcessLookupError):
                    _write(leaf / "cgroup.procs", str(pid))
            _write(base / "cgroup.subtree_control", "+pids +memory")
    parent = base / name
    parent.mkdir(exist_ok=True)
    _write(parent / "cgroup.subtree_control", "+pids +memory")
    _write(parent / "memory.max", str(limits.memory_bytes()))
    return parent


def _setup_v2_bare(root: Path, name: str) -> Path:
    """The agent's directory in a cgroup v2 hierarchy mounted at or just below ``root``, used
    without controllers: it holds and kills a command's processes, and limits nothing."""
    own = _own_paths().get("")
    if own is None:
        raise ValueError("this process is in no cgroup v2 hierarchy")
    for fstype, mount_root, mount, _ in _mounts():
        if fstype == "cgroup2" and root in (mount, mount.parent):
            base = _beneath(mount, mount_root, own)
            _warn_unless_delegated(base)
            _sweep_stale(base)
            parent = base / name
            parent.mkdir(exist_ok=True)
            return parent
    raise ValueError(f"no cgroup v2 hierarchy mounted at or below {root}")


def _setup_v1(root: Path, name: str, limits: Limits) -> tuple[Path, ...]:
    own = _own_paths()
    parents = []
    for controller in ("pids", "memory", "freezer"):
        base = _base(root, controller, own.get(controller, "/"))
        if controller not in own or not (base / "cgroup.procs").exists():
            if controller == "freezer":
                continue  # the kill then loops over the members instead of freezing them first
            raise ValueError(f"no cgroup v1 {controller} hierarchy below {root}")
        _sweep_stale(base)
        parent = base / name
        parent.mkdir(exist_ok=True)
        parents.append(parent)
    _write(parents[1] / "memory.limit_in_bytes", str(limits.memory_bytes()))
    return tuple(parents)


def _limit(kind: Kind, dirs: tuple[Path, ...], limits: Limits) -> None:
    memory = str(limits.memory_bytes())
    tasks = str(limits.max_tasks)
    if kind == "cgroup2":
        _write(dirs[0] / "pids.max", tasks)
        _write(dirs[0] / "memory.max", memory)
        with contextlib.suppress(FileNotFoundError):  # no swap accounting: nothing to cap
            _write(dirs[0] / "memory.swap.max", "0")
        return
    _write(dirs[0] / "pids.max", tasks)
    _write(dirs[1] / "memory.limit_in_bytes", memory)
    with contextlib.suppress(FileNotFoundError, PermissionError):  # memsw exists with swap accounting
        _write(dirs[1] / "memory.memsw.limit_in_bytes", memory)


def joiner(fds: list[int]) -> Callable[[], None]:
    """The ``preexec_fn`` that moves the child into its cgroup before it execs anything."""
    chosen = tuple(fds)

    def join() -> None:
        for fd in chosen:
            os.write(fd, b"0")

    return join


def marked(pid_marker: str) -> list[int]:
    """Processes whose environment carries ``MARKER_VARIABLE=pid_marker`` (the no-cgroup sweep)."""
    needle = f"{MARKER_VARIABLE}={pid_marker}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as env:
                if needle in env.read().split(b"\0"):
                    found.append(int(entry.name))
        except OSError:
            continue
    return found
