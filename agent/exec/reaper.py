"""The agent as child subreaper: orphaned grandchildren are re-parented to it and reaped here.

PID 1 in the VMs does not reap (it is a minimal init), so without this every daemon a command
leaves behind ends as a zombie forever. ``prctl(PR_SET_CHILD_SUBREAPER)`` makes orphans of our
descendants our children instead of init's; this module then reaps them.

The care needed: the agent also has children that *someone* waits for (``subprocess.run``,
the exec runner, the launcher polling its apps once a second). Reaping those would steal their
exit status. So a zombie child is reaped only when it is certainly an orphan:

* it belongs to a process group we killed and is not that group's leader (the leader is
  waited for by its runner), or
* it has stayed a zombie across two passes (one second apart): a waiter blocked in
  ``waitpid`` collects its child the instant it dies, so a zombie that lingers has nobody
  waiting for it, or
* it is a session leader (what the agent itself starts: commands and launched apps) and has
  stayed a zombie across LEADER_PASSES passes, longer than the launcher's poll interval.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import time
from pathlib import Path

from agent.tasks import cancel_and_wait

LOG = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
PASS_INTERVAL = 1.0
LEADER_PASSES = 5  # passes a session-leader zombie lingers before it counts as an orphan
KILLED_GROUP_MEMORY = 30.0  # seconds a killed group's orphans are reaped on sight


def become_subreaper() -> bool:
    """Ask the kernel to re-parent orphaned descendants to this process; False if refused."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            LOG.warning("prctl(PR_SET_CHILD_SUBREAPER) failed: %s", os.strerror(ctypes.get_errno()))
            return False
    except (OSError, AttributeError) as exc:
        LOG.warning("cannot become a child subreaper: %s", exc)
        return False
    return True


def _children() -> list[int]:
    """PIDs of our direct children, from every thread's /proc children list.

    Kernels built without CONFIG_PROC_CHILDREN lack those lists: then scan /proc for our pid as
    the parent (slower, but only once a second).
    """
    pids: list[int] = []
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return pids
    readable = False
    for task in tasks:
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        readable = True
        pids.extend(int(part) for part in text.split())
    return pids if readable else _children_by_scan()


def _children_by_scan() -> list[int]:
    me = os.getpid()
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == me:
            pids.append(int(entry.name))
    return pids


def zombie_ids(pid: int) -> tuple[int, int] | None:
    """(process group, session) of ``pid`` when it is a zombie, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: parse after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 4 or fields[0] != "Z":
        return None
    return int(fields[2]), int(fields[3])


class Reaper:
    """Periodically reaps orphaned zombie children; ``reap_group`` reaps a killed group at once."""

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}  # zombie pid -> passes it has been seen in
        self._killed_groups: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.reaped = 0
        self.active = False

    async def start(self) -> None:
        self.active = become_subreaper()
        self._task = asyncio.create_task(self._run(), name="exec-reaper")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def mark_killed(self, pgid: int) -> None:
        """Members of ``pgid`` other than its leader may be reaped the moment they are zombies."""
        self._killed_groups[pgid] = time.monotonic()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PASS_INTERVAL)
            try:
                self.reap_once(periodic=True)
            except Exception:  # a bug here must not end reaping for good
                LOG.exception("reaper pass failed")

    def reap_once(self, *, periodic: bool = False) -> int:
        """One pass over our zombie children; returns how many were reaped.

        Only the periodic passes (one a second) count how long a zombie has lingered; the extra
        passes made while a group is being killed reap that group's orphans only.
        """
        seen_now: dict[int, int] = {}
        count = 0
        horizon = time.monotonic() - KILLED_GROUP_MEMORY
        for pgid in [g for g, when in self._killed_groups.items() if when < horizon]:
            del self._killed_groups[pgid]
        for pid in _children():
            ids = zombie_ids(pid)
            if ids is None:
                continue
            group, session = ids
            passes = self._seen.get(pid, 0) + (1 if periodic else 0)
            needed = LEADER_PASSES if pid == session else 2
            if (group in self._killed_groups and pid != group) or passes >= needed:
                if self._reap(pid):
                    count += 1
            elif passes:
                seen_now[pid] = passes
        if periodic:
            self._seen = seen_now
        self.reaped += count
        return count

    @staticmethod
    def _reap(pid: int) -> bool:
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return reaped == pid
