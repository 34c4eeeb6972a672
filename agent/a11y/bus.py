"""Finding the desktop session's accessibility bus: the one answer the accessibility service
connects to and the environment report describes, so the two can never disagree.

``$AT_SPI_BUS_ADDRESS`` when set; else the session bus (``$DBUS_SESSION_BUS_ADDRESS``, else the
systemd user bus socket) is asked ``org.a11y.Bus.GetAddress``, which D-Bus-activates
at-spi-bus-launcher when needed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

from agent.a11y.dbus import Call, Connection
from agent.errors import AccessibilityUnavailable

CONNECT_TIMEOUT = 2.0  # seconds for each connection and for GetAddress


def session_bus_address(env: Mapping[str, str]) -> str | None:
    """The desktop session's bus: $DBUS_SESSION_BUS_ADDRESS, else the systemd user bus socket."""
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return env["DBUS_SESSION_BUS_ADDRESS"]
    runtime = env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    socket = Path(runtime) / "bus"
    return f"unix:path={socket}" if socket.exists() else None


async def bus_address(env: Mapping[str, str]) -> str:
    """The accessibility bus's address; AccessibilityUnavailable says why there is none."""
    if env.get("AT_SPI_BUS_ADDRESS"):
        return env["AT_SPI_BUS_ADDRESS"]
    session = session_bus_address(env)
    if session is None:
        raise AccessibilityUnavailable("no session bus: DBUS_SESSION_BUS_ADDRESS is not set")
    try:
        conn = await Connection.open(session, "org.a11y.Bus", peer=False, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # dbus-fast raises many types for a missing or refused bus
        raise AccessibilityUnavailable(
            "cannot connect to the session bus", details={"reason": str(exc)}
        ) from None
    try:
        loop = asyncio.get_running_loop()
        body = await conn.call(
            Call("/org/a11y/bus", "org.a11y.Bus", "GetAddress"), loop.time() + CONNECT_TIMEOUT
        )
    except Exception as exc:
        raise AccessibilityUnavailable(
            "the session bus did not give an accessibility bus (is at-spi2-core installed?)",
            details={"reason": str(exc)},
        ) from None
    finally:
        await conn.close()
    return str(body[0])


async def connect(env: Mapping[str, str]) -> Connection:
    """A connection to the accessibility bus (the caller closes it)."""
    address = await bus_address(env)
    try:
        return await Connection.open(address, None, peer=False, timeout=CONNECT_TIMEOUT)
    except Exception as exc:  # as above
        raise AccessibilityUnavailable(
            "cannot connect to the accessibility bus", details={"reason": str(exc)}
        ) from None


async def probe(env: Mapping[str, str], timeout: float) -> str | None:
    """None when the accessibility bus can be reached within ``timeout``, else why not."""
    try:
        async with asyncio.timeout(timeout):
            conn = await connect(env)
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except AccessibilityUnavailable as exc:
        reason = exc.details.get("reason")
        return f"{exc.message}: {reason}" if reason else exc.message
    await conn.close()
    return None
