"""Top-level windows over EWMH/ICCCM: list, focus, move, resize, maximize, minimize, close.

Why its own X connection (not the input one): window operations wait for the window manager
to act (polling a property for up to a second) and a listing fires dozens of pipelined requests;
on their own connection and thread they never delay a keystroke or a screenshot, and input never
delays them. It costs one more X client.

Geometry is the client area in root coordinates (see ``window_list``). ``move`` uses static
gravity so that moving a window to the position read back from ``/position`` leaves it there.

Requests go through the window manager (client messages to the root) so that it keeps its own
bookkeeping; with no EWMH window manager, listing, focus, move and resize fall back to plain X
calls and the rest answers 503 WINDOW_MANAGER_UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from Xlib import X, Xatom
from Xlib.display import Display

from agent.errors import DeadlineExceeded, InvalidArgument, WindowManagerUnavailable
from agent.x11 import ewmh
from agent.x11.connection import XConnection, format_window_id
from agent.x11.window_list import (
    Decoration,
    WindowAt,
    WindowInfo,
    WindowReader,
    parse_window_id,
)

__all__ = [
    "Decoration",
    "WindowAt",
    "WindowInfo",
    "WindowManagerUnavailable",
    "WindowService",
    "format_window_id",
    "parse_window_id",
]

LOG = logging.getLogger(__name__)

SETTLE_TIMEOUT = 2.0  # seconds to wait for the WM to carry out a request
POLL_INTERVAL = 0.01

_STATE_REMOVE, _STATE_ADD = 0, 1
_MOVERESIZE_X, _MOVERESIZE_Y, _MOVERESIZE_W, _MOVERESIZE_H = 1 << 8, 1 << 9, 1 << 10, 1 << 11
_STATIC_GRAVITY = 10


class WindowService:
    """Window management on a dedicated X connection; every method is a coroutine."""

    def __init__(self, conn: XConnection) -> None:
        self._conn = conn
        self._reader = WindowReader(conn)

    @classmethod
    def for_display(cls, display_name: str) -> WindowService:
        return cls(XConnection(display_name, name="x11-windows"))

    @property
    def conn(self) -> XConnection:
        """The connection (shared with read-only neighbours such as the environment report)."""
        return self._conn

    async def close(self) -> None:
        await self._conn.close()

    # -- reads ---------------------------------------------------------------------------
    async def list_windows(self) -> list[WindowInfo]:
        return await self._conn.run(self._reader.list_all)

    async def get(self, window: int) -> WindowInfo:
        return await self._conn.run(lambda d: self._reader.get(d, window), window=window)

    async def active(self) -> int | None:
        return await self._conn.run(self._reader.active)

    async def at(self, x: int, y: int) -> WindowAt:
        """The window a click at (x, y) would reach now."""
        return await self._conn.run(lambda d: self._reader.window_at(d, x, y))

    async def wm_name(self) -> str | None:
        """The running EWMH window manager's name, None when there is none."""

        def read(display: Display) -> str | None:
            found = ewmh.supporting_wm(display, self._reader.atoms(display))
            return found[1] if found else None

        return await self._conn.run(read)

    # -- operations ----------------------------------------------------------------------
    async def focus(self, window: int) -> None:
        """Activate and raise, de-iconifying if needed; returns once the WM made it active."""
        has_wm = await self._conn.run(lambda d: self._focus(d, window), window=window)
        if not has_wm:
            return
        try:
            await self._wait(window, lambda w: w.focused and not w.minimized, "activate")
        except DeadlineExceeded:
            # Some WMs refuse activation requests in odd states; set focus ourselves.
            LOG.info("window manager did not activate %s; setting focus directly", format_window_id(window))
            await self._conn.run(lambda d: self._focus_directly(d, window), window=window)
            await self._wait(window, lambda w: w.focused, "focus")

    async def request_focus(self, window: int) -> None:
        """Ask the WM to activate and raise the window, without waiting: for callers that watch
        for the effect they need (a modal child may be activated in its place)."""
        await self._conn.run(lambda d: self._focus(d, window), window=window)

    async def move(self, window: int, x: int, y: int) -> None:
        await self._restore_if_maximized(window)
        await self._conn.run(lambda d: self._moveresize(d, window, x=x, y=y), window=window)
        await self._wait(window, lambda w: (w.x, w.y) == (x, y), "move", strict=False)

    async def resize(self, window: int, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise InvalidArgument(f"size {width}x{height} must be positive")
        await self._restore_if_maximized(window)
        await self._conn.run(lambda d: self._moveresize(d, window, width=width, height=height), window=window)
        await self._wait(window, lambda w: (w.width, w.height) == (width, height), "resize", strict=False)

    async def maximize(self, window: int) -> None:
        info = await self.get(window)
        if info.minimized:
            await self.focus(window)
        await self._conn.run(lambda d: self._set_maximized(d, window, True), window=window)
        await self._wait(window, lambda w: w.maximized, "maximize")

    async def minimize(self, window: int) -> None:
        def send(display: Display) -> None:
            atoms = self._reader.require_wm(display, "minimize")
            self._reader.ensure_managed(display, window)
            ewmh.client_message(display, window, atoms["WM_CHANGE_STATE"], [ewmh.WM_STATE_ICONIC])
            display.flush()

        await self._conn.run(send, window=window)
        await self._wait(window, lambda w: w.minimized, "minimize")

    async def close_window(self, window: int) -> None:
        """Ask politely (_NET_CLOSE_WINDOW / WM_DELETE_WINDOW): the app may ask to save first."""
        await self._conn.run(lambda d: self._close(d, window), window=window)

    # -- X thread ------------------------------------------------------------------------
    def _focus(self, display: Display, window: int) -> bool:
        has_wm = self._reader.ensure_managed(display, window)
        if not has_wm:
            self._focus_directly(display, window)
            return False
        atoms = self._reader.atoms(display)
        root = display.screen().root.id
        batch = ewmh.Batch(display)
        batch.prop(root, atoms["_NET_CURRENT_DESKTOP"], Xatom.CARDINAL)
        batch.prop(window, atoms["_NET_WM_DESKTOP"], Xatom.CARDINAL)
        current, desktop = (ewmh.as_prop(r) for r in batch.collect())
        on = desktop.first_int() if desktop else None
        if current is not None and on is not None and on not in (current.first_int(), ewmh.ALL_DESKTOPS):
            # Not every WM switches to the window's workspace on activation (openbox does not).
            ewmh.client_message(display, root, atoms["_NET_CURRENT_DESKTOP"], [on, X.CurrentTime])
        ewmh.client_message(
            display, window, atoms["_NET_ACTIVE_WINDOW"], [ewmh.SOURCE_PAGER, X.CurrentTime, 0]
        )
        display.flush()
        return True

    def _focus_directly(self, display: Display, window: int) -> None:
        win = display.create_resource_object("window", window)
        win.map()
        win.configure(stack_mode=X.Above)
        display.sync()  # the map must be processed before focus may move to the window
        if win.get_attributes().map_state == X.IsViewable:  # else SetInputFocus is a BadMatch
            win.set_input_focus(X.RevertToParent, X.CurrentTime)

    def _moveresize(
        self,
        display: Display,
        window: int,
        *,
        x: int | None = None,
        y: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        has_wm = self._reader.ensure_managed(display, window)
        if not has_wm:
            changes = {
                k: v for k, v in {"x": x, "y": y, "width": width, "height": height}.items() if v is not None
            }
            display.create_resource_object("window", window).configure(**changes)
            return
        atoms = self._reader.atoms(display)
        flags = _STATIC_GRAVITY | (ewmh.SOURCE_PAGER << 12)
        flags |= _MOVERESIZE_X if x is not None else 0
        flags |= _MOVERESIZE_Y if y is not None else 0
        flags |= _MOVERESIZE_W if width is not None else 0
        flags |= _MOVERESIZE_H if height is not None else 0
        data = [flags, x or 0, y or 0, width or 0, height or 0]
        ewmh.client_message(display, window, atoms["_NET_MOVERESIZE_WINDOW"], data)
        display.flush()

    def _set_maximized(self, display: Display, window: int, on: bool) -> None:
        atoms = self._reader.require_wm(display, "maximize" if on else "restore")
        self._reader.ensure_managed(display, window)
        action = _STATE_ADD if on else _STATE_REMOVE
        data = [
            action,
            atoms["_NET_WM_STATE_MAXIMIZED_VERT"],
            atoms["_NET_WM_STATE_MAXIMIZED_HORZ"],
            ewmh.SOURCE_PAGER,
        ]
        ewmh.client_message(display, window, atoms["_NET_WM_STATE"], data)
        display.flush()

    def _close(self, display: Display, window: int) -> None:
        has_wm = self._reader.ensure_managed(display, window)
        atoms = self._reader.atoms(display)
        if has_wm:
            ewmh.client_message(
                display, window, atoms["_NET_CLOSE_WINDOW"], [X.CurrentTime, ewmh.SOURCE_PAGER]
            )
        else:
            protocols = ewmh.read_prop(display, window, atoms["WM_PROTOCOLS"], Xatom.ATOM)
            if protocols is None or atoms["WM_DELETE_WINDOW"] not in protocols.ints():
                raise WindowManagerUnavailable(
                    "cannot close the window politely: no EWMH window manager runs and the "
                    "window does not accept WM_DELETE_WINDOW"
                )
            ewmh.client_message(
                display,
                window,
                atoms["WM_PROTOCOLS"],
                [atoms["WM_DELETE_WINDOW"], X.CurrentTime],
                to=window,
            )
        display.flush()

    # -- waiting -------------------------------------------------------------------------
    async def _restore_if_maximized(self, window: int) -> None:
        """WMs ignore moves and resizes of maximized windows, so restore them first."""
        info = await self.get(window)
        if info.maximized:
            await self._conn.run(lambda d: self._set_maximized(d, window, False), window=window)
            await self._wait(window, lambda w: not w.maximized, "restore")

    async def _wait(
        self,
        window: int,
        done: Callable[[WindowInfo], bool],
        what: str,
        *,
        strict: bool = True,
        timeout: float = SETTLE_TIMEOUT,
    ) -> WindowInfo:
        """Poll until ``done`` holds. Non-strict waits end early once the window stops changing
        (the WM may clamp a move to the screen or a size to the app's resize increments)."""
        deadline = time.monotonic() + timeout
        previous: WindowInfo | None = None
        stable_since = time.monotonic()
        while True:
            info = await self.get(window)
            if done(info):
                return info
            now = time.monotonic()
            if info != previous:
                previous, stable_since = info, now
            elif not strict and now - stable_since > 0.25:
                return info
            if now >= deadline:
                if not strict:
                    return info
                raise DeadlineExceeded(
                    f"the window manager did not {what} window {format_window_id(window)} "
                    f"within {timeout:g}s",
                    details={"window_id": format_window_id(window)},
                )
            await asyncio.sleep(POLL_INTERVAL)
