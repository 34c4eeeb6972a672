"""Wiring every source of desktop events into the hub: the X monitor, readiness, background
processes and launched apps. Each source knows nothing of the hub; each gets a listener here."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from agent.live.hub import EventHub
from agent.live.tickets import TicketBook

if TYPE_CHECKING:
    from agent.exec.processes import ManagedProcess
    from agent.services import Services
    from agent.supervision.readiness import ReadinessState
    from agent.x11.events import DesktopChange, DesktopMonitor

LOG = logging.getLogger(__name__)


class LiveService:
    """The hub, the tickets and the X monitor that feeds the hub (``Services.live``)."""

    def __init__(self, display: str | None, ring_size: int) -> None:
        self.hub = EventHub(ring_size)
        self.tickets = TicketBook()
        self._display = display
        self._monitor: DesktopMonitor | None = None

    async def start(self, services: Services) -> None:
        self.hub.bind(asyncio.get_running_loop())
        services.readiness.subscribe(self._readiness_changed)
        if services.exec is not None:
            services.exec.processes.exit_listeners.append(self._process_exited)
        if services.launcher is not None:
            services.launcher.exit_listeners.append(self._app_exited)
        if self._display is not None:
            from agent.x11.events import DesktopMonitor

            self._monitor = DesktopMonitor(self._display, self._desktop_changed)
            self._monitor.start()

    async def close(self) -> None:
        if self._monitor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._monitor.close)
            self._monitor = None

    # -- listeners (the X one on the monitor's thread, the launcher's on any) -------------
    def _desktop_changed(self, change: DesktopChange) -> None:
        fields: dict[str, Any] = {"type": change.kind, **dict(change.fields)}
        if change.kind.startswith("window."):
            window = change.window
            fields["window"] = window  # a WindowInfo: Window reads it (from_attributes) when read
        self.hub.publish(fields)

    def _readiness_changed(self, state: ReadinessState) -> None:
        self.hub.publish(
            {
                "type": "readiness.changed",
                "ready": state.ready,
                "status": str(state.status),
                "checks": {check.name: check.ok for check in state.checks},
            }
        )
        if state.status == "stopping":  # the last event: streams end now, not at the stop's deadline
            self.hub.close()

    def _process_exited(self, proc: ManagedProcess) -> None:
        exit_ = proc.exit
        if exit_ is None:
            return
        self.hub.publish(
            {
                "type": "process.exited",
                "process_id": proc.id,
                "pid": proc.pid,
                "exit_code": exit_.exit_code,
                "signal": exit_.signal,
                "timed_out": exit_.timed_out,
            }
        )

    def _app_exited(self, pid: int, program: str, exit_code: int) -> None:
        self.hub.publish({"type": "app.exited", "pid": pid, "program": program, "exit_code": exit_code})
