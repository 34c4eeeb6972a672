"""Unchanged screens cost nothing: the last images encoded, kept until the X server reports a
change on their region (DAMAGE, ``agent.x11.damage``).

A screenshot whose region, screen size and options (format, quality, scale, sizes, cursor) equal
those of an image kept here, with no change reported on that region since its grab, gets the same
bytes back after a check of a few microseconds (``DamageMonitor.caught_up``: every change the X
server has sent so far has been seen). An image with the cursor drawn is served again only while
the cursor has the same position and shape (one XFixes round trip on the capture thread).

Correctness first, so an image is only kept when nothing can have escaped the monitor:
- it was grabbed while the damage object was armed, and no change on its region arrived while
  the grab and encode were in flight (such a change may or may not be in the picture);
- a lost X connection (the monitor's ``on_lost``) forgets everything, a changed screen size is
  part of the key, and when the monitor cannot vouch for "no change yet" the screen is grabbed.

Cost while idle: nothing for a lone screenshot; a second within ``IDLE_S`` starts the monitor's
thread and connection, which sleep in ``select`` while nothing is drawn; ``IDLE_S`` seconds after
the last screenshot the cache unsubscribes and forgets its images, and the monitor drops its damage object
(``LINGER`` seconds later), as after any other subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace

from agent.desktop.backend import CaptureOptions, Region
from agent.errors import DisplayUnavailable
from agent.models.image import ImageResult
from agent.x11.backend import X11Desktop
from agent.x11.damage import DamageMonitor, Rect, ScreenChange, Subscription

LOG = logging.getLogger(__name__)

IDLE_S = 30.0  # seconds after the last screenshot until the cache lets the monitor go
MAX_IMAGES = 4  # distinct (region, options) kept: an agent alternates between a few
CacheKey = tuple[Region, int, int, CaptureOptions]


@dataclass(slots=True)
class _Kept:
    image: ImageResult
    area: Rect
    cursor: tuple[int, int, int] | None  # the drawn cursor's position and shape


@dataclass(slots=True)
class _InFlight:
    area: Rect
    spoiled: bool = False  # a change on the area arrived while it was grabbed and encoded


class ScreenshotCache:
    """Captures through ``desktop``, keeping the last images until DAMAGE says they are stale."""

    def __init__(self, desktop: X11Desktop, monitor: DamageMonitor) -> None:
        self._desktop = desktop
        self._monitor = monitor
        self._images: OrderedDict[CacheKey, _Kept] = OrderedDict()
        self._in_flight: list[_InFlight] = []
        self._subscription: Subscription | None = None
        self._subscribing: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._closed = False
        self.hits = 0
        self.misses = 0

    async def capture(self, region: Region | None, options: CaptureOptions) -> ImageResult:
        """The image of ``region`` (None: the screen), from the cache when nothing changed there.
        The result says which (``ImageResult.cache``: "hit" or "miss")."""
        size = await self._desktop.screen_size()
        if region is None:
            region = Region(0, 0, size.width, size.height)
        self._keep_alive()
        key = (region, size.width, size.height, options)
        kept = self._images.get(key)
        # Checked again after the cursor's round trip: a change delivered meanwhile dropped it.
        if kept is not None and await self._still_valid(kept) and self._images.get(key) is kept:
            self._images.move_to_end(key)
            self.hits += 1
            return replace(kept.image, cache="hit")
        self.misses += 1
        area = Rect(region.x, region.y, region.width, region.height)
        # Kept only if the monitor was watching before the grab began and saw nothing on the area
        # until the image was encoded.
        flight = _InFlight(area, spoiled=self._subscription is None or not self._monitor.armed)
        self._in_flight.append(flight)
        try:
            capture = await self._desktop.screen_capture()
            image, cursor = await capture.capture_stamped(region, size.width, size.height, options)
        finally:
            self._in_flight.remove(flight)
        image = replace(image, cache="miss")
        if not flight.spoiled and self._subscription is not None:
            self._images[key] = _Kept(image, area, cursor)
            self._images.move_to_end(key)
            while len(self._images) > MAX_IMAGES:
                self._images.popitem(last=False)
        return image

    async def _still_valid(self, kept: _Kept) -> bool:
        if kept.cursor is not None:
            capture = await self._desktop.screen_capture()
            if await capture.cursor_stamp() != kept.cursor:
                return False
        # After the cursor check: the later the check, the more recent the drawing it rules out.
        return self._subscription is not None and self._monitor.caught_up()

    # -- the monitor's reports (event loop) ------------------------------------------------
    def _changed(self, change: ScreenChange) -> None:
        stale = [key for key, kept in self._images.items() if change.touches(kept.area)]
        for key in stale:
            del self._images[key]
        for flight in self._in_flight:
            if change.touches(flight.area):
                flight.spoiled = True

    def _lost(self, reason: str) -> None:
        LOG.info("screenshot cache emptied: the screen-change monitor lost the display (%s)", reason)
        self._forget()

    def _forget(self) -> None:
        self._images.clear()
        for flight in self._in_flight:
            flight.spoiled = True

    # -- arming lazily, letting go when idle ---------------------------------------------
    def _keep_alive(self) -> None:
        """Subscribe on the second screenshot within ``IDLE_S`` (a lone screenshot starts no
        monitor; not awaited: that screenshot does not wait for it, it is just not kept) and
        unsubscribe ``IDLE_S`` after the last."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        again = self._idle is not None  # an earlier screenshot within IDLE_S
        if self._idle is not None:
            self._idle.cancel()
        self._idle = loop.call_later(IDLE_S, self._let_go)
        if again and self._subscription is None and self._subscribing is None:
            self._subscribing = loop.create_task(self._subscribe(), name="screenshot-cache-subscribe")

    async def _subscribe(self) -> None:
        try:
            subscription = await self._monitor.subscribe(self._changed, self._lost)
        except DisplayUnavailable as exc:  # no DAMAGE or no display: screenshots are just not kept
            LOG.info("screenshot cache off for now: %s", exc)
            return
        finally:
            self._subscribing = None
        if self._closed or self._idle is None:
            subscription.close()
            return
        self._subscription = subscription

    def _let_go(self) -> None:
        self._idle = None
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        self._forget()

    async def close(self) -> None:
        self._closed = True
        if self._idle is not None:
            self._idle.cancel()
        task = self._subscribing
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._let_go()
