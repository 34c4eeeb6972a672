"""Screen pixels read straight out of the MIT-SHM segment, as a ``Frame`` (bytes-like BGRX rows).

Why not ``mss.MSS.grab``: it copies the shared segment into a fresh ``bytearray`` per grab (8 MiB
at 1080p: on these VMs a fresh buffer costs a page fault per 4 KiB, ~2 ms), and draws the cursor
pixel by pixel in Python (~1 ms). Here the encoder reads the segment in place (a memoryview), and
the cursor is never drawn into it: the frame carries the pointer's picture (a ``Sprite``) and the
encoder pastes it onto the RGB copy it makes anyway. mss still opens the connection, attaches the
segment and falls back to plain GetImage where MIT-SHM does not work (a remote server), and that
fallback is used as is.

A frame from ``grab`` is valid until the next grab on the same ``FrameGrabber``: one capture
thread owns it and encodes before grabbing again.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass

import mss
from mss.linux.base import ALL_PLANES, MSSImplXCBBase
from mss.linux.xcbgen import (
    ImageFormat,
    shm_get_image,
    xfixes_get_cursor_image,
    xfixes_get_cursor_image_cursor_image,
)
from mss.linux.xshmgetimage import MSSImplXShmGetImage, ShmStatus

from agent.desktop.imaging import Frame, Sprite


@dataclass(frozen=True, slots=True)
class CursorImage:
    """The pointer's picture as XFixes reports it: where its top-left corner is, its BGRA pixels."""

    left: int
    top: int
    serial: int  # changes whenever the cursor's shape changes
    width: int
    height: int
    pixels: bytes  # BGRA, straight alpha (as mss reads it)

    @property
    def stamp(self) -> tuple[int, int, int]:
        """What makes two drawn cursors the same: position and shape."""
        return self.left, self.top, self.serial


class FrameGrabber:
    """One X connection grabbing screen areas; not thread-safe (the capture thread's own)."""

    def __init__(self, display_name: str) -> None:
        self._mss = mss.MSS(display=display_name, with_cursor=False)

    def grab(self, box: dict[str, int], cursor: CursorImage | None = None) -> Frame:
        """The area's BGRX pixels, with ``cursor`` to be drawn over them if given."""
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
            pixels: memoryview | bytearray = memoryview(impl._buf)[: width * height * 4]
        else:  # the first grab (which proves MIT-SHM works) and the GetImage fallback
            pixels = self._mss.grab(box).raw
        sprite = None
        if cursor is not None and _overlaps(box, cursor):
            sprite = Sprite(
                cursor.pixels, cursor.width, cursor.height, cursor.left - box["left"], cursor.top - box["top"]
            )
        return Frame(pixels, width, height, sprite)

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
        argb = array("I", bytes(xfixes_get_cursor_image_cursor_image(reply)))  # 32-bit ARGB words
        if sys.byteorder == "big":
            argb.byteswap()  # the bytes of each word in memory: B, G, R, A
        return CursorImage(
            reply.x - reply.xhot,
            reply.y - reply.yhot,
            int(reply.cursor_serial),
            int(reply.width),
            int(reply.height),
            argb.tobytes(),
        )

    def close(self) -> None:
        self._mss.close()


def _overlaps(box: dict[str, int], cursor: CursorImage) -> bool:
    return (
        cursor.left < box["left"] + box["width"]
        and box["left"] < cursor.left + cursor.width
        and cursor.top < box["top"] + box["height"]
        and box["top"] < cursor.top + cursor.height
    )
