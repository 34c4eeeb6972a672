"""The screen-change monitor as a service: several subscribers, regions, timestamps, idleness.

Changes are made by other X clients (xsetroot, an xterm) on a private Xvfb; the monitor runs
in-process, as the agent's services run it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from agent.x11.change_watch import watching
from agent.x11.damage import DamageMonitor, Rect, ScreenChange
from tests.displays import free_display_number
from tests.x11.test_recovery import start_xvfb


@pytest.fixture()
def display() -> Iterator[str]:
    number = free_display_number()
    xvfb = start_xvfb(number)
    yield f":{number}"
    xvfb.terminate()
    xvfb.wait()


def x_client(display: str, *argv: str) -> None:
    subprocess.run(argv, env=dict(os.environ, DISPLAY=display), check=True, timeout=10)


async def test_every_subscriber_gets_each_change_with_its_region_and_time(display: str) -> None:
    monitor = DamageMonitor(display)
    first: list[ScreenChange] = []
    second: list[ScreenChange] = []
    try:
        one = await monitor.subscribe(first.append)
        two = await monitor.subscribe(second.append)
        async with watching(monitor) as settling:  # a fresh server may still paint its root
            assert await settling.quiet(0.3, time.monotonic() + 5)
        first.clear()
        second.clear()
        before = time.monotonic()
        await asyncio.to_thread(x_client, display, "xsetroot", "-solid", "#336699")
        deadline = time.monotonic() + 5
        while not (first and second) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert first and first == second  # the same changes, in the same order
        change = first[0]
        assert change.bounds == Rect(0, 0, 800, 600)  # the root repainted whole (nothing covers it)
        assert before <= change.at <= time.monotonic()
        assert abs(change.wall_time - time.time()) < 5
        one.close()
        count = len(second)
        await asyncio.to_thread(x_client, display, "xsetroot", "-solid", "#996633")
        deadline = time.monotonic() + 5
        while len(second) == count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(second) > count and len(first) == count  # the closed subscription hears nothing
        two.close()
    finally:
        await monitor.close()


async def test_an_idle_screen_wakes_nothing_and_a_region_filters(display: str) -> None:
    monitor = DamageMonitor(display)
    try:
        async with watching(monitor, Rect(700, 500, 100, 100)) as corner:
            await asyncio.sleep(0.3)  # anything left from the server's start
            woken = monitor.wakeups
            assert await corner.quiet(1.0, time.monotonic() + 5) is True
            assert monitor.wakeups == woken  # a second of idle desktop: no wakeup at all
        xterm = subprocess.Popen(
            ["xterm", "-geometry", "20x5+0+0", "-e", "sh", "-c", "while true; do date +%N; sleep 0.05; done"],
            env=dict(os.environ, DISPLAY=display),
        )
        try:
            async with watching(monitor, Rect(0, 0, 100, 60)) as near:
                assert await near.changed(time.monotonic() + 10) is not None  # it is printing
                async with watching(monitor, Rect(700, 500, 100, 100)) as corner:
                    seen = near.count
                    assert await corner.changed(time.monotonic() + 1) is None  # nothing there
                    assert near.count > seen  # while the xterm kept printing
        finally:
            xterm.kill()
            xterm.wait()
    finally:
        await monitor.close()
