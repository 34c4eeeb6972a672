"""A test ends what it starts: processes that outlive the test run are found and named.

The test process becomes a child subreaper (as the agent itself does), so whatever a test starts
stays its descendant even when it daemonizes (ssh-agent, gpg-agent and dbus-launch fork away
from their parent). After each test the new descendants are noted with the test that was
running; once every fixture is torn down, any that still runs is a leak: the run fails, naming
each process and the test it appeared in, and the process is ended (by its pid).
"""

from __future__ import annotations

import contextlib
import os

import psutil

from agent.exec.reaper import become_subreaper

Key = tuple[int, float]  # pid, start time: a pid reused later is another process


class LeakWatch:
    def __init__(self) -> None:
        self.enabled = become_subreaper()
        self.first_seen: dict[Key, str] = {}

    @staticmethod
    def _running() -> dict[Key, psutil.Process]:
        found = {}
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.status() != psutil.STATUS_ZOMBIE:
                    found[(child.pid, child.create_time())] = child
        return found

    def after_test(self, nodeid: str) -> None:
        """Note the processes that appeared since the last test (fixtures of wider scope too)."""
        if self.enabled:
            for key in self._running():
                self.first_seen.setdefault(key, nodeid)

    def leaks(self) -> list[str]:
        """Every descendant still running, named, then ended."""
        if not self.enabled:
            return []
        found = []
        for key, process in self._running().items():
            with contextlib.suppress(psutil.Error):
                command = " ".join(process.cmdline())[:160] or process.name()
                test = self.first_seen.get(key, "the end of the run")
                found.append(f"pid {process.pid} ({command}), started during {test}")
                process.kill()
        self._reap()
        return found

    @staticmethod
    def _reap() -> None:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
