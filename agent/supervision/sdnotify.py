"""A stdlib ``sd_notify``: tell systemd (Type=notify) we are ready, what we are doing, alive.

Why not libsystemd: one datagram to ``$NOTIFY_SOCKET`` is the whole protocol, and the agent must
run where the library is absent. The subtle part is the abstract namespace: systemd may hand
us ``@/org/freedesktop/systemd1/notify``, where the ``@`` stands for a leading NUL byte.

``Notifier`` also owns the watchdog: ``WATCHDOG=1`` is sent from a task on the event loop, so a
loop blocked for longer than ``WatchdogSec`` is restarted by systemd, which is the point.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.tasks import cancel_and_wait, wait_at_most

if TYPE_CHECKING:
    from agent.supervision.readiness import Readiness

LOG = logging.getLogger(__name__)


def socket_address(raw: str) -> str | bytes | None:
    """The address to send to, from ``$NOTIFY_SOCKET``; None when unusable."""
    if raw.startswith("@"):
        # Abstract socket: the name starts with a NUL byte and is not NUL-terminated.
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when not asked.

    ``WATCHDOG_PID`` names the process the watchdog is meant for; if it is another (we were
    started by a wrapper that kept the environment), the watchdog is not ours to feed.
    """
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2


class Notifier:
    """Sends state lines to systemd; every method is a no-op when not run by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self._address = socket_address(environ.get("NOTIFY_SOCKET", ""))
        self._watchdog = watchdog_interval(environ)
        self._task: asyncio.Task[None] | None = None
        self._status: str | None = None

    @classmethod
    def from_environment(cls) -> Notifier:
        """Read and remove NOTIFY_SOCKET and WATCHDOG_*: the commands and apps the agent starts
        inherit its environment and must not talk to systemd in the agent's name."""
        notifier = cls(dict(os.environ))
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            os.environ.pop(name, None)
        return notifier

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` (e.g. "READY=1", "STATUS=...") as one datagram; False if not sent.

        Never raises: a lost notification must not take the agent down.
        """
        if self._address is None:
            return False
        message = "\n".join(lines).encode()
        try:
            # A socket per message: a few a minute, and nothing to leak or to reopen after errors.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self._address)
        except OSError as exc:
            LOG.warning("sd_notify failed: %s", exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self._status = status
        self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        """Send STATUS= when it changed (systemctl status shows the last one)."""
        if status != self._status:
            self._status = status
            self.notify(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        self._status = status
        self.notify("STOPPING=1", f"STATUS={status}")

    async def announce(self, readiness: Readiness) -> None:
        """READY=1 once the display answers (call it after the socket listens), then STATUS=
        on every readiness change. Until then STATUS= says what we are waiting for."""
        changed = asyncio.Event()
        readiness.subscribe(lambda _state: changed.set())
        while True:
            state = await readiness.current()
            display = next((c for c in state.checks if c.name == "display"), None)
            if display is not None and display.ok:
                break
            self.status(f"waiting for the display: {display.detail if display else 'not checked yet'}")
            changed.clear()
            await wait_at_most(changed.wait(), max(readiness.poll_interval, 0.1) * 2)
        self.ready(state.summary())
        LOG.info("display answers (%s)%s", state.summary(), "; sent READY=1" if self.enabled else "")
        readiness.subscribe(lambda new: self.status(new.summary()))

    def start_watchdog(self) -> None:
        """Ping WATCHDOG=1 from the running loop at half of WATCHDOG_USEC."""
        if self._address is None or self._watchdog is None or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._ping(self._watchdog), name="sd-watchdog")

    async def _ping(self, interval: float) -> None:
        LOG.info("systemd watchdog: pinging every %.1f s", interval)
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
