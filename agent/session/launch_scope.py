"""Moving launched apps out of the agent's systemd unit, so restarting the agent spares them.

Why: under systemd every process the agent starts lives in the agent's cgroup, and stopping or
restarting the unit (``KillMode=mixed``) kills whatever is left in it; that is right for
``/exec`` commands and wrong for a browser the user is looking at. Desktops solve this the same
way (GNOME's ``app-gnome-*.scope``): right after the spawn, ask the service manager to put the
new process tree into a transient scope unit of its own (``StartTransientUnit`` with ``PIDs``).
Best effort: outside systemd (no ``INVOCATION_ID``) nothing is done, and a refusal is logged,
never an error for the caller (the app runs either way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

LOG = logging.getLogger(__name__)

CALL_TIMEOUT = 2.0
SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.]")


def scope_name(program: str, pid: int) -> str:
    """``app-computer_agent-<program>-<pid>.scope`` with only characters unit names allow."""
    safe = _UNSAFE.sub("_", program)[:64] or "app"
    return f"app-computer_agent-{safe}-{pid}.scope"


class ScopeMover:
    def __init__(self, bus_address: str) -> None:
        self.bus_address = bus_address
        self._bus: Any = None
        self._lock = asyncio.Lock()

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None) -> ScopeMover | None:
        """A mover talking to the manager that runs the agent, or None outside systemd."""
        env = os.environ if environ is None else environ
        if not env.get("INVOCATION_ID"):
            return None
        if os.geteuid() == 0:
            return cls(SYSTEM_BUS)
        address = env.get("DBUS_SESSION_BUS_ADDRESS")
        if not address and env.get("XDG_RUNTIME_DIR"):
            address = f"unix:path={env['XDG_RUNTIME_DIR']}/bus"
        return cls(address) if address else None

    async def move(self, program: str, pids: Iterable[int]) -> bool:
        """Put ``pids`` (the app and any children it already has) into a scope of their own."""
        pid_list = sorted(set(pids))
        if not pid_list:
            return False
        try:
            return await asyncio.wait_for(self._move(program, pid_list), CALL_TIMEOUT)
        except TimeoutError:
            LOG.warning("systemd did not answer StartTransientUnit within %gs", CALL_TIMEOUT)
        except Exception as exc:  # dbus-fast raises many types for a missing or refused bus
            LOG.warning("cannot move %s into its own scope: %s: %s", program, type(exc).__name__, exc)
            await self.close()
        return False

    async def _move(self, program: str, pids: list[int]) -> bool:
        from dbus_fast import Message, MessageType, Variant

        bus = await self._connect()
        name = scope_name(program, pids[0])
        reply = await bus.call(
            Message(
                destination="org.freedesktop.systemd1",
                path="/org/freedesktop/systemd1",
                interface="org.freedesktop.systemd1.Manager",
                member="StartTransientUnit",
                signature="ssa(sv)a(sa(sv))",
                body=[
                    name,
                    "fail",
                    [
                        ["PIDs", Variant("au", pids)],
                        ["CollectMode", Variant("s", "inactive-or-failed")],
                        ["Description", Variant("s", f"{program} started by computer-agent")],
                    ],
                    [],
                ],
            )
        )
        if reply is None or reply.message_type != MessageType.METHOD_RETURN:
            error = reply.error_name if reply is not None else "no reply"
            LOG.warning("systemd refused a scope for %s: %s %s", program, error, reply.body if reply else "")
            return False
        LOG.debug("moved %s (pids %s) into %s", program, pids, name)
        return True

    async def _connect(self) -> Any:
        from dbus_fast.aio import MessageBus

        async with self._lock:
            if self._bus is None or not self._bus.connected:
                self._bus = await MessageBus(bus_address=self.bus_address).connect()
            return self._bus

    async def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            with contextlib.suppress(Exception):
                bus.disconnect()
                await bus.wait_for_disconnect()
