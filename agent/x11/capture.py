"""Screen capture with mss (XCB + MIT-SHM) and encoding, on a thread of its own.

Capture and encode run on their own thread and X connection, so a screenshot never waits behind
input and input never waits behind an encode. The connection heals the way input's does: any
failure of a grab (mss raises ScreenShotError, but also a bare AssertionError when XCB hands back
no reply on a dead socket) drops every capture connection and answers ``DisplayUnavailable``
(503); the next capture, at most every ``RECONNECT_INTERVAL`` seconds, connects afresh. An error
the server answers (BadMatch for an area off a screen that just shrank) is no such failure: it is
mapped like every X error (``agent.x11.connection.typed_x_error``) and the connection stays. The
outcome of the last grab is kept so that readiness can report the capture's health without
queueing behind screenshots.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import mss
from mss.linux.xcbhelpers import XProtoError

from agent.desktop.backend import CaptureOptions, Region
from agent.desktop.imaging import Encoder, target_size
from agent.errors import DisplayUnavailable
from agent.models.base import ImageResult
from agent.x11.connection import RECONNECT_INTERVAL, from_error_code

LOG = logging.getLogger(__name__)

# A grab that succeeded this recently proves the capture works; readiness does not probe again.
HEALTH_FRESH_S = 1.0
ONE_PIXEL = {"left": 0, "top": 0, "width": 1, "height": 1}


class ScreenCapture:
    def __init__(self, display_name: str) -> None:
        self.display_name = display_name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="x11-capture")
        self._grabbers: dict[bool, mss.MSS] = {}  # keyed on "draws the cursor"
        self._encoder = Encoder()
        self._last_success: float | None = None  # time.monotonic() of the last good grab
        self._last_failure: float | None = None
        self._last_error = "not connected yet"

    async def capture(
        self, region: Region, screen_width: int, screen_height: int, options: CaptureOptions
    ) -> ImageResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self._capture, region, screen_width, screen_height, options
        )

    async def check(self) -> str:
        """Raise DisplayUnavailable unless the capture can grab; a recent good grab is enough,
        otherwise one pixel is grabbed (behind any screenshots already queued)."""
        last = self._last_success
        if last is not None and time.monotonic() - last < HEALTH_FRESH_S:
            return f"grabbing {self.display_name}"
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._grab, ONE_PIXEL, False)
        return f"grabbing {self.display_name}"

    def _grabber(self, cursor: bool) -> mss.MSS:
        grabber = self._grabbers.get(cursor)
        if grabber is None:
            failed = self._last_failure
            if failed is not None and time.monotonic() - failed < RECONNECT_INTERVAL:
                raise DisplayUnavailable(
                    f"cannot capture the X display {self.display_name}", details={"reason": self._last_error}
                )
            grabber = mss.MSS(display=self.display_name, with_cursor=cursor)
            self._grabbers[cursor] = grabber
        return grabber

    def _grab(self, box: dict[str, int], cursor: bool) -> mss.screenshot.ScreenShot:
        """One grab; any failure drops every capture connection so the next call reconnects."""
        try:
            shot = self._grabber(cursor).grab(box)
        except DisplayUnavailable:
            raise
        except XProtoError as exc:  # the server refused this grab (BadMatch...): the connection is fine
            details = exc.details
            raise from_error_code(int(details["error_code"]), int(details["resource_id"])) from None
        except Exception as exc:  # mss fails on a lost server with ScreenShotError or AssertionError
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self._fail(reason)
            raise DisplayUnavailable(
                f"cannot capture the X display {self.display_name}", details={"reason": reason}
            ) from None
        self._last_success = time.monotonic()
        self._last_failure = None
        return shot

    def _fail(self, reason: str) -> None:
        if self._grabbers or self._last_failure is None:
            LOG.warning("X display %s lost (x11-capture): %s", self.display_name, reason)
        self._drop()
        self._last_error = reason
        self._last_failure = time.monotonic()
        self._last_success = None

    def _drop(self) -> None:
        for grabber in self._grabbers.values():
            try:
                grabber.close()
            except Exception:  # the socket is already dead; nothing more to release
                LOG.debug("closing a dead capture connection failed", exc_info=True)
        self._grabbers.clear()

    def _capture(
        self, region: Region, screen_width: int, screen_height: int, options: CaptureOptions
    ) -> ImageResult:
        box = {"left": region.x, "top": region.y, "width": region.width, "height": region.height}
        shot = self._grab(box, options.cursor)
        size = options.size or target_size(
            shot.width, shot.height, options.scale, options.max_width, options.max_height
        )
        encoded = self._encoder.encode(
            shot.raw,
            shot.width,
            shot.height,
            format=options.format,
            quality=options.quality,
            size=size,
            canvas=options.canvas,
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
