"""A stand-in for systemd's Manager on a private D-Bus daemon: records StartTransientUnit calls."""

# dbus-fast reads D-Bus signatures from string annotations, which ruff would otherwise unquote.
# ruff: noqa: UP037, F821, N802

from __future__ import annotations

import subprocess
from typing import Any

from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method


class Manager(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.freedesktop.systemd1.Manager")
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    @method()
    def StartTransientUnit(self, name: "s", mode: "s", props: "a(sv)", aux: "a(sa(sv))") -> "o":  # type: ignore[name-defined, valid-type]  # D-Bus signatures
        self.calls.append((name, mode, {key: value.value for key, value in props}))
        return "/org/freedesktop/systemd1/job/1"


class FakeSystemd:
    """``async with FakeSystemd() as fake``: ``fake.address`` to connect to, ``fake.manager.calls``."""

    def __init__(self) -> None:
        self.manager = Manager()
        self.address = ""
        self._daemon: subprocess.Popen[bytes] | None = None
        self._bus: Any = None

    async def __aenter__(self) -> FakeSystemd:
        self._daemon = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1", "--nopidfile"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self._daemon.stdout is not None
        self.address = self._daemon.stdout.readline().decode().strip()
        self._bus = await MessageBus(bus_address=self.address).connect()
        self._bus.export("/org/freedesktop/systemd1", self.manager)
        await self._bus.request_name("org.freedesktop.systemd1")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._bus.disconnect()
        await self._bus.wait_for_disconnect()
        assert self._daemon is not None and self._daemon.stdout is not None
        self._daemon.terminate()
        self._daemon.wait(5)
        self._daemon.stdout.close()
