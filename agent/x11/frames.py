"""Screen pixels as numpy arrays read straight out of the MIT-SHM segment, the cursor drawn by numpy.

Why not ``mss.MSS.grab``: it copies the shared segment into a fresh ``bytearray`` per grab (8 MiB
at 1080p: on these VMs a fresh buffer costs a page fault per 4 KiB, ~2 ms), and draws the cursor
pixel by pixel in Python (~1 ms). Here the encoder reads the segment in place; only a screenshot
with the cursor copies, into a buffer reused between grabs. mss still opens the connection, attaches
the segment and falls back to plain GetImage where MIT-SHM does not work (a remote server), and
that fallback is used as is.

An array from ``grab`` is valid until the next grab on the same ``FrameGrabber``: one capture
thread owns it and encodes before grabbing again.
"""

from __future__ import annotations

from dataclasses import dataclass

import mss
import numpy as np
from mss.linux.base import ALL_PLANES, MSSImplXCBBase
from mss.linux.xcbgen import (
    ImageFormat,
    shm_get_image,
    xfixes_get_cursor_image,
    xfixes_get_cursor_image_cursor_image,
)
from mss.linux.xshmgetimage import MSSImplXShmGetImage, ShmStatus


@dataclass(frozen=True, slots=True)
class CursorImage:
    """The pointer's picture as XFixes reports it: where its top-left corner is, its BGRA pixels."""

    left: int
    top: int
    serial: int  # changes whenever the cursor's shape changes
    pixels: np.ndarray  # (height, width, 4) BGRA, straight alpha (as mss reads it)

    @property
    def stamp(self) -> tuple[int, int, int]:
        """What makes two drawn cursors the same: position and shape."""
        return self.left, self.top, self.serial


class FrameGrabber:
    """One X connection grabbing screen areas; not thread-safe (the capture thread's own)."""

    def __init__(self, display_name: str) -> None:
        self._mss = mss.MSS(display=display_name, with_cursor=False)
        self._scratch = np.empty(0, dtype=np.uint8)  # reused for grabs the cursor is drawn on

    def grab(self, box: dict[str, int], cursor: CursorImage | None = None) -> np.ndarray:
        """The area as a (height, width, 4) BGRX array, ``cursor`` drawn on it if given."""
        width, height = box["width"], box["height"]
        impl = self._mss._impl
        if isinstance(impl, MSSImplXShmGetImage) and impl.shm_status is ShmStatus.AVAILABLE:
            assert impl.conn is not None and impl._buf is not None and impl._shmseg is not None
            if width * height * 4 > impl._bufsize:  # the screen grew: mss says to reconnect
                raise mss.ScreenShotError("the capture area exceeds the shared segment")
            shm_get_image(
                impl.conn,
                impl.drawable,
                box["left"],
                box["top"],
                width,
                height,
                ALL_PLANES,
                ImageFormat.ZPixmap,
                impl._shmseg,
                0,
            )
            pixels = np.frombuffer(impl._buf, dtype=np.uint8, count=width * height * 4)
        else:  # the first grab (which proves MIT-SHM works) and the GetImage fallback
            pixels = np.frombuffer(self._mss.grab(box).raw, dtype=np.uint8)
        frame = pixels.reshape(height, width, 4)
        if cursor is not None and _overlaps(box, cursor):
            frame = self._writable_copy(frame)
            draw_cursor(frame, box["left"], box["top"], cursor)
        return frame

    def cursor(self) -> CursorImage:
        """The pointer's picture and position (one XFixes round trip)."""
        impl = self._mss._impl
        if not isinstance(impl, MSSImplXCBBase) or impl.conn is None:
            raise mss.ScreenShotError("no XCB connection to read the cursor from")
        if impl._xfixes_ready is None:
            impl._xfixes_ready = impl._cursor_check_xfixes()
        if not impl._xfixes_ready:
            raise mss.ScreenShotError("the X server has no XFixes 2: cannot draw the cursor")
        reply = xfixes_get_cursor_image(impl.conn)
        argb = np.ctypeslib.as_array(xfixes_get_cursor_image_cursor_image(reply))
        pixels = argb.astype("<u4").view(np.uint8).reshape(reply.height, reply.width, 4)
        return CursorImage(reply.x - reply.xhot, reply.y - reply.yhot, int(reply.cursor_serial), pixels)

    def _writable_copy(self, frame: np.ndarray) -> np.ndarray:
        if self._scratch.size < frame.size:
            self._scratch = np.empty(frame.size, dtype=np.uint8)
        copy = self._scratch[: frame.size].reshape(frame.shape)
        np.copyto(copy, frame)
        return copy

    def close(self) -> None:
        self._mss.close()


def _overlaps(box: dict[str, int], cursor: CursorImage) -> bool:
    height, width = cursor.pixels.shape[:2]
    return (
        cursor.left < box["left"] + box["width"]
        and box["left"] < cursor.left + width
        and cursor.top < box["top"] + box["height"]
        and box["top"] < cursor.top + height
    )


def draw_cursor(frame: np.ndarray, left: int, top: int, cursor: CursorImage) -> None:
    """Blend ``cursor`` onto ``frame`` (whose top-left pixel is screen point left, top) in place."""
    height, width = frame.shape[:2]
    c_height, c_width = cursor.pixels.shape[:2]
    x0, y0 = cursor.left - left, cursor.top - top
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + c_width, width), min(y0 + c_height, height)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    source = cursor.pixels[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.uint16)
    target = frame[fy0:fy1, fx0:fx1, :3]
    alpha = source[..., 3:4]
    blended = (source[..., :3] * alpha + target.astype(np.uint16) * (255 - alpha)) // 255
    target[...] = blended.astype(np.uint8)
