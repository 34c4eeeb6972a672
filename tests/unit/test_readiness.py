"""Readiness: checks, caching and change events, against a display that can go away."""

from __future__ import annotations

import asyncio

from agent.supervision.readiness import Readiness, ReadinessState, Status
from tests.unit.fakes_health import FlakyDesktop
from tests.waiting import wait_until_async


async def test_ready_when_display_answers() -> None:
    readiness = Readiness(FlakyDesktop())  # type: ignore[arg-type]
    state = await readiness.current()
    assert state.ready
    assert state.status is Status.READY
    assert {c.name: c.ok for c in state.checks} == {"display": True, "capture": True, "not_stopping": True}
    assert state.screen is not None and state.screen.width == 1280


async def test_display_down_is_starting_then_degraded() -> None:
    desktop = FlakyDesktop()
    desktop.up = False
    readiness = Readiness(desktop, startup_grace=0.05)  # type: ignore[arg-type]
    first = await readiness.current(max_age=0)
    assert not first.ready and first.status is Status.STARTING
    display = next(c for c in first.checks if c.name == "display")
    assert "not reachable" in display.detail
    await asyncio.sleep(0.06)  # pacing: past the 0.05 s startup grace, which is what is tested
    assert (await readiness.current(max_age=0)).status is Status.DEGRADED


async def test_a_capture_that_cannot_grab_is_not_ready_and_recovers() -> None:
    desktop = FlakyDesktop()
    readiness = Readiness(desktop, startup_grace=0)  # type: ignore[arg-type]
    assert (await readiness.current(max_age=0)).ready
    desktop.capture_up = False
    broken = await readiness.current(max_age=0)
    assert not broken.ready and broken.status is Status.DEGRADED
    checks = {c.name: c for c in broken.checks}
    assert checks["display"].ok and not checks["capture"].ok
    assert "cannot capture" in checks["capture"].detail
    assert "capture: cannot capture" in broken.summary()
    desktop.capture_up = True
    assert (await readiness.current(max_age=0)).ready


async def test_failing_optional_check_does_not_block_readiness() -> None:
    async def bus() -> str:
        raise ConnectionRefusedError("no bus")

    readiness = Readiness(FlakyDesktop(), a11y_check=bus, a11y_required=False)  # type: ignore[arg-type]
    state = await readiness.current()
    assert state.ready
    a11y = next(c for c in state.checks if c.name == "accessibility")
    assert not a11y.ok and not a11y.required and "no bus" in a11y.detail


async def test_a_hanging_check_times_out() -> None:
    async def bus() -> str:
        await asyncio.sleep(10)
        return "never"

    readiness = Readiness(FlakyDesktop(), a11y_check=bus, check_timeout=0.05)  # type: ignore[arg-type]
    state = await readiness.current()
    assert not state.ready
    assert "no answer within" in next(c for c in state.checks if c.name == "accessibility").detail


async def test_cached_within_max_age_and_concurrent_callers_share_a_run() -> None:
    calls = 0

    async def bus() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return "ok"

    readiness = Readiness(FlakyDesktop(), a11y_check=bus, max_age=10)  # type: ignore[arg-type]
    await asyncio.gather(*(readiness.current() for _ in range(20)))
    await readiness.current()
    assert calls == 1


async def test_poller_publishes_changes_and_shutdown() -> None:
    desktop = FlakyDesktop()
    readiness = Readiness(desktop, poll_interval=0.02)  # type: ignore[arg-type]
    events: list[ReadinessState] = []
    readiness.subscribe(events.append)
    polls = desktop.checks
    await readiness.start()
    await wait_until_async(lambda: desktop.checks >= polls + 3, what="three polls")
    assert [e.ready for e in events] == [True]  # unchanged polls are not events
    desktop.up = False
    await wait_until_async(lambda: len(events) == 2, what="the display going down to be published")
    desktop.up = True
    await wait_until_async(lambda: len(events) == 3, what="the display coming back to be published")
    await readiness.close()
    assert [e.ready for e in events] == [True, False, True, False]
    assert events[-1].status is Status.STOPPING
    assert readiness.last is not None and not readiness.last.ready


async def test_a_stuck_check_is_not_called_again_until_it_returns() -> None:
    calls = 0
    release = asyncio.Event()

    async def stuck_bus() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "answered late"

    readiness = Readiness(FlakyDesktop(), a11y_check=stuck_bus, check_timeout=0.02)  # type: ignore[arg-type]
    for _ in range(5):
        state = await readiness.current(max_age=0)
        assert not state.ready
    assert calls == 1
    release.set()
    await asyncio.sleep(0)
    assert (await readiness.current(max_age=0)).ready
    await readiness.close()
