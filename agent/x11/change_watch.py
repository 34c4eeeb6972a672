"""One waiter's view of the screen changes ``DamageMonitor`` reports, with deadlines.

"Has the screen (or a region of it) been quiet for N ms since I started?", "has it changed?":
what wait-for and screenshot_after ask, answered on the event loop from the monitor's
callbacks (no polling). A display lost while watching is a 503 ``DISPLAY_UNAVAILABLE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from agent.errors import DisplayUnavailable
from agent.x11.damage import DamageMonitor, Rect, ScreenChange


class ChangeWatch:
    """One waiter's view of the changes since it started (``async with monitor_watch(...)``)."""

    def __init__(self, region: Rect | None = None) -> None:
        self.region = region
        self.started = time.monotonic()
        self.last: ScreenChange | None = None  # the latest change touching the region
        self.count = 0
        self.lost: str | None = None
        self._signal = asyncio.Event()

    def feed(self, change: ScreenChange) -> None:
        if change.touches(self.region):
            self.last = change
            self.count += 1
            self._signal.set()

    def fail(self, reason: str) -> None:
        self.lost = reason
        self._signal.set()

    def _check(self) -> None:
        if self.lost is not None:
            raise DisplayUnavailable(
                "lost the X display while watching the screen", details={"reason": self.lost}
            )

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` or until the next change, whichever comes first."""
        self._signal.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._signal.wait(), max(seconds, 0.0))
        self._check()

    async def quiet(self, quiet: float, deadline: float) -> bool:
        """True once nothing changed for ``quiet`` seconds (counted from the start at the
        earliest); False at ``deadline`` (monotonic) if the screen kept changing."""
        while True:
            self._check()
            now = time.monotonic()
            since = max(self.started, self.last.at if self.last else 0.0)
            left = since + quiet - now
            if left <= 0:
                return True
            if now >= deadline:
                return False
            await self._pause(min(left, deadline - now))

    async def changed(self, deadline: float) -> ScreenChange | None:
        """The first change after the start (in the region), or None at ``deadline``."""
        while self.last is None:
            self._check()
            now = time.monotonic()
            if now >= deadline:
                return None
            await self._pause(deadline - now)
        return self.last

    async def next_change(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a change after now: True when one came."""
        seen = self.count
        await self._pause(seconds)
        return self.count != seen


@contextlib.asynccontextmanager
async def watching(monitor: DamageMonitor, region: Rect | None = None) -> AsyncIterator[ChangeWatch]:
    """A ``ChangeWatch`` fed by ``monitor`` for the duration of the block."""
    watch = ChangeWatch(region)
    subscription = await monitor.subscribe(watch.feed, watch.fail)
    watch.started = time.monotonic()  # once armed: changes before it cannot be seen
    try:
        yield watch
    finally:
        subscription.close()
