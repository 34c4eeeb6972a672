"""Screen capture (XCB + MIT-SHM, ``agent.x11.frames``) and encoding, on a thread of its own.

Capture and encode run on their own thread and X connection, so a screenshot never waits behind
input and input never waits behind an encode. The connection heals the way input's does: any
failure of a grab (mss raises ScreenShotError, but also a bare AssertionError when XCB hands back
no reply on a dead socket) drops every capture connection and answers ``DisplayUnavailable``
(503); the next capture, at most every ``RECONNECT_INTERVAL`` seconds, connects afresh. An error
the server answers (BadMatch for an area off a screen that just shrank) is no such failure: it is
mapped like every X error (``agent.x11.connection.typed_x_error``) and the connection stays. The
outcome of the last grab is kept so that readiness can report the capture's health without
queueing behind screenshots.

The shared segment (a screen's worth: 3.5 MiB at 720p, 8 MiB at 1080p, all of it touched by a
full screenshot) and the encoder's memory files and helper thread are kept while screenshots
come, and released ``idle_s`` seconds after the last one (``--capture-idle-seconds``): an agent
between tasks holds none of it, and the next screenshot sets them up again (a millisecond or two).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from mss.linux.xcbhelpers import XProtoError

from agent.desktop.backend import CaptureOptions, Region
from agent.desktop.imaging import Encoder, Frame, target_size
from agent.errors import AgentError, DisplayUnavailable
from agent.models.image import ImageResult
from agent.x11.connection import RECONNECT_INTERVAL, from_error_code
from agent.x11.frames import CursorImage, FrameGrabber

LOG = logging.getLogger(__name__)

# A grab that succeeded this recently proves the capture works; readiness does not probe again.
HEALTH_FRESH_S = 1.0
ONE_PIXEL = {"left": 0, "top": 0, "width": 1, "height": 1}
BAD_ACCESS = 10  # the core protocol's error code
UNREADABLE_CURSOR = (-1, -1, -1)  # the stamp of a pointer whose image the server refuses
T = TypeVar("T")


class ScreenCapture:
    def __init__(self, display_name: str, *, idle_s: float = 30.0) -> None:
        self.display_name = display_name
        self.idle_s = idle_s
        self._idle: asyncio.TimerHandle | None = None  # releases the buffers when it fires
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="x11-capture")
        self._grabber_now: FrameGrabber | None = None
        self._encoder = Encoder()
        self._last_success: float | None = None  # time.monotonic() of the last good grab
        self._last_failure: float | None = None
        self._last_error = "not connected yet"
        self._cursor_refused = False  # see _read_cursor
        self._released = False  # the buffers were let go when idle (see _release)

    async def capture(
        self, region: Region, screen_width: int, screen_height: int, options: CaptureOptions
    ) -> ImageResult:
        return (await self.capture_stamped(region, screen_width, screen_height, options))[0]

    async def capture_stamped(
        self, region: Region, screen_width: int, screen_height: int, options: CaptureOptions
    ) -> tuple[ImageResult, tuple[int, int, int] | None]:
        """The image and, when the cursor was drawn, the cursor's stamp (position and shape)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, self._capture_stamped, region, screen_width, screen_height, options
            )
        finally:
            self._release_later(loop)

    def _release_later(self, loop: asyncio.AbstractEventLoop) -> None:
        """(Re)start the idle timer after a screenshot."""
        if self._idle is not None:
            self._idle.cancel()
        self._idle = loop.call_later(self.idle_s, self._release_when_idle, loop)

    def _release_when_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        self._idle = None
        # Behind any grab already queued on the capture thread, which owns what is released.
        loop.run_in_executor(self._executor, self._release)

    def _release(self) -> None:
        """Detach the shared segment (closing the capture connection) and close the encoder's
        memory files and helper thread; the next grab or health check connects afresh."""
        if self._idle is not None:  # a screenshot came meanwhile: keep them
            return
        self._drop()
        self._encoder.close()
        self._released = True

    async def check(self) -> str:
        """Raise DisplayUnavailable unless the capture can grab; a recent good grab is enough,
        otherwise one pixel is grabbed (behind any screenshots already queued)."""
        last = self._last_success
        if last is not None and time.monotonic() - last < HEALTH_FRESH_S:
            return f"grabbing {self.display_name}"
        if self._released:  # not set up again for a check: the input connection vouches for the display
            return f"idle, connects to {self.display_name} on the next screenshot"
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._grab, ONE_PIXEL, False)
        return f"grabbing {self.display_name}"

    async def cursor_stamp(self) -> tuple[int, int, int]:
        """Where the pointer is and which shape it has (see ``CursorImage.stamp``)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._cursor_stamp)

    def _cursor_stamp(self) -> tuple[int, int, int]:
        cursor = self._x_call(self._read_cursor)
        return UNREADABLE_CURSOR if cursor is None else cursor.stamp

    def _grabber(self) -> FrameGrabber:
        grabber = self._grabber_now
        if grabber is None:
            failed = self._last_failure
            if failed is not None and time.monotonic() - failed < RECONNECT_INTERVAL:
                raise DisplayUnavailable(
                    f"cannot capture the X display {self.display_name}", details={"reason": self._last_error}
                )
            grabber = self._grabber_now = FrameGrabber(self.display_name)
            self._released = False
        return grabber

    def _read_cursor(self, grabber: FrameGrabber) -> CursorImage | None:
        """The pointer's image; None when the X server refuses to hand it out.

        A client that sets a cursor and exits (``xsetroot -cursor_name watch``) leaves it on the
        screen under an id of its empty client slot, and the server's SECURITY extension refuses
        every read of it (BadAccess) until the pointer shows another cursor. The screenshot is
        then taken without the pointer drawn (logged), rather than refused: a 500 or 503 on every
        ``cursor=true`` screenshot would stop an agent's loop for as long as that cursor shows.
        """
        try:
            image = grabber.cursor()
        except XProtoError as exc:
            if int(exc.details["error_code"]) != BAD_ACCESS:
                raise
            if not self._cursor_refused:
                LOG.warning(
                    "the X server refuses to read the pointer's image (its owner has gone): not drawn"
                )
            self._cursor_refused = True
            return None
        self._cursor_refused = False
        return image

    def _grab(self, box: dict[str, int], cursor: bool) -> tuple[Frame, CursorImage | None]:
        """The area's BGRX pixels (valid until the next grab), with the cursor to draw if asked."""

        def grab(grabber: FrameGrabber) -> tuple[Frame, CursorImage | None]:
            image = self._read_cursor(grabber) if cursor else None
            return grabber.grab(box, image), image

        return self._x_call(grab)

    def _x_call(self, call: Callable[[FrameGrabber], T]) -> T:
        """One call on the capture connection; any failure drops it so the next call reconnects."""
        try:
            result = call(self._grabber())
        except AgentError:  # typed already (no connection, a cursor refused): passed on as is
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
        return result

    def _fail(self, reason: str) -> None:
        if self._grabber_now is not None or self._last_failure is None:
            LOG.warning("X display %s lost (x11-capture): %s", self.display_name, reason)
        self._drop()
        self._last_error = reason
        self._last_failure = time.monotonic()
        self._last_success = None

    def _drop(self) -> None:
        grabber, self._grabber_now = self._grabber_now, None
        if grabber is not None:
            try:
                try:
                    grabber.close()
                except BufferError:  # a view of the shared segment still lives (in a traceback)
                    gc.collect()
                    grabber.close()
            except Exception:  # the socket is already dead; nothing more to release
                LOG.debug("closing a dead capture connection failed", exc_info=True)

    def _capture_stamped(
        self, region: Region, screen_width: int, screen_height: int, options: CaptureOptions
    ) -> tuple[ImageResult, tuple[int, int, int] | None]:
        box = {"left": region.x, "top": region.y, "width": region.width, "height": region.height}
        frame, cursor = self._grab(box, options.cursor)
        size = options.size or target_size(
            region.width, region.height, options.scale, options.max_width, options.max_height
        )
        encoded = self._encoder.encode(
            frame,
            format=options.format,
            quality=options.quality,
            size=size,
            canvas=options.canvas,
        )
        del frame  # the shared segment may not be closed while a view of it lives
        image = ImageResult(
            data=encoded.data,
            format=options.format,
            width=encoded.width,
            height=encoded.height,
            screen_width=screen_width,
            screen_height=screen_height,
        )
        if not options.cursor:
            return image, None
        return image, UNREADABLE_CURSOR if cursor is None else cursor.stamp

    async def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._drop)
        self._executor.shutdown(wait=False)
        self._encoder.close()
