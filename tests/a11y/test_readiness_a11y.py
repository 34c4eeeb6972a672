"""Readiness with the real accessibility check: the AT-SPI registry on a private session bus
answers, and a session bus that is not there makes the agent unready with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.a11y.service import Accessibility
from agent.session.devdesktop import DevDesktop
from agent.supervision.readiness import Readiness, Status
from agent.x11.backend import X11Desktop

pytestmark = pytest.mark.a11y


async def test_accessibility_bus_check_passes_on_a_session_with_at_spi(desktop: DevDesktop) -> None:
    x11 = X11Desktop(desktop.display)
    a11y = Accessibility(desktop.env)
    try:
        readiness = Readiness(x11, a11y_check=a11y.check, check_timeout=5)
        state = await readiness.current()
        checks = {c.name: c for c in state.checks}
        assert checks["accessibility"].ok, checks["accessibility"].detail
        assert "accessible application" in checks["accessibility"].detail
        assert state.ready and state.status is Status.READY
    finally:
        await a11y.close()
        await x11.close()


async def test_missing_session_bus_makes_the_agent_unready(desktop: DevDesktop, tmp_path: Path) -> None:
    x11 = X11Desktop(desktop.display)
    env = dict(desktop.env, DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus")
    env.pop("AT_SPI_BUS_ADDRESS", None)
    a11y = Accessibility(env)
    try:
        state = await Readiness(x11, a11y_check=a11y.check, check_timeout=5).current()
        checks = {c.name: c for c in state.checks}
        assert checks["display"].ok
        assert not checks["accessibility"].ok and checks["accessibility"].required
        assert "bus" in checks["accessibility"].detail
        assert not state.ready
    finally:
        await a11y.close()
        await x11.close()
