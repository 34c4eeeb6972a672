"""Screen capture with mss (XCB + MIT-SHM) and encoding, on a thread of its own.

Capture and encode run on their own thread and X connection, so a screenshot never waits behind
input and input never waits behind an encode. XCB reports a lost server as an error rather
than exiting the process, so a capture after the X server died raises DisplayUnavailable and
the next one reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import mss
from mss.exception import ScreenShotError

from agent.desktop import CaptureOptions, Region
from agent.errors import DisplayUnavailable
from agent.imaging import Encoder, target_size
from agent.models.base import ImageResult

LOG = logging.getLogger(__name__)


class ScreenCapture:
    def __init__(self, display_name: str) -> None:
        self.display_name = display_name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="x11-capture")
        self._grabbers: dict[bool, mss.MSS] = {}  # keyed on "draws the cursor"
        self._encoder = Encoder()

    async def capture(
        self, region: Region, screen_width: int, screen_height: int, options: CaptureOptions
    ) -> ImageResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._capture, region, screen_width, screen_height, options
        )

    def _grabber(self, cursor: bool) -> mss.MSS:
        grabber = self._grabbers.get(cursor)
        if grabber is None:
            try:
                grabber = mss.MSS(display=self.display_name, with_cursor=cursor)
            except ScreenShotError as exc:
                raise DisplayUnavailable(
                    f"cannot capture the X display {self.display_name}", details={"reason": str(exc)}
                ) from None
            self._grabbers[cursor] = grabber
        return grabber

    def _drop(self) -> None:
        for grabber in self._grabbers.values():
            try:
                grabber.close()
            except ScreenShotError:
                LOG.debug("closing a dead capture connection failed", exc_info=True)
        self._grabbers.clear()

    def _capture(
        self, region: Region, screen_width: int, screen_height: int, options: CaptureOptions
    ) -> ImageResult:
        box = {"left": region.x, "top": region.y, "width": region.width, "height": region.height}
        try:
            shot = self._grabber(options.cursor).grab(box)
        except ScreenShotError as exc:
            self._drop()
            raise DisplayUnavailable(
                f"lost the X display {self.display_name} while capturing", details={"reason": str(exc)}
            ) from None
        size = target_size(shot.width, shot.height, options.scale, options.max_width, options.max_height)
        encoded = self._encoder.encode(
            shot.raw, shot.width, shot.height, format=options.format, quality=options.quality, size=size
        )
        return ImageResult(
            data=encoded.data,
            format=options.format,
            width=encoded.width,
            height=encoded.height,
            screen_width=screen_width,
            screen_height=screen_height,
        )

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._drop)
        self._executor.shutdown(wait=False)
