"""Readiness with the real accessibility check: the AT-SPI registry on a private session bus
answers, and a session bus that is not there makes the agent unready with a reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.a11y.service import Accessibility
from agent.session.devdesktop import DevDesktop
from agent.supervision.readiness import Readiness, Status
from agent.x11.backend import X11Desktop
from tests.conftest import start_agent


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


@pytest.mark.parametrize("bus", ["at-spi-address-only", "none"])
def test_environment_report_and_readiness_find_the_same_bus(
    desktop: DevDesktop, tmp_path: Path, bus: str
) -> None:
    """One probe: /desktop/environment's accessibility_bus and /ready's check agree (issue 12).

    Before, the report only tried $DBUS_SESSION_BUS_ADDRESS and said false for a session that
    names its accessibility bus in $AT_SPI_BUS_ADDRESS, which the service itself connected to.
    """
    env = {
        k: v for k, v in desktop.env.items() if k not in {"DBUS_SESSION_BUS_ADDRESS", "AT_SPI_BUS_ADDRESS"}
    }
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "runtime")  # no systemd user bus socket there either
    (tmp_path / "runtime").mkdir(mode=0o700)
    if bus == "at-spi-address-only":  # asked of the session bus by dbus-send, not by our code
        env["AT_SPI_BUS_ADDRESS"] = subprocess.run(
            ["dbus-send", "--session", "--print-reply=literal", "--dest=org.a11y.Bus", "/org/a11y/bus",
             "org.a11y.Bus.GetAddress"],
            env=desktop.env, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    agent = start_agent(env, tmp_path, "--display", desktop.display)
    try:
        with agent.client() as http:
            report = http.get("/desktop/environment").json()
            check = http.get("/ready").json()["checks"]["accessibility"]
    finally:
        agent.stop()
    assert report["accessibility_bus"] is check["ok"] is (bus != "none"), (report, check)
    if bus == "none":
        assert "DBUS_SESSION_BUS_ADDRESS" in report["accessibility_bus_error"]
