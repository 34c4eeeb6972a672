"""Top-level windows over EWMH/ICCCM: list, focus, move, resize, maximize, minimize, close.

Why its own X connection (not the input one): window operations wait for the window manager
to act (polling a property for up to a second) and a listing fires dozens of pipelined requests;
on their own connection and thread they never delay a keystroke or a screenshot, and input never
delays them. It costs one more X client.

Geometry is the client area (what the application draws) in root coordinates, so a
screenshot pixel inside ``x..x+width`` is inside the window's content; ``frame`` gives the
decoration the WM adds around it. ``move`` uses static gravity so that moving a window to the
position read back from ``/position`` leaves it where it was.

Requests go through the window manager (client messages to the root) so that it keeps its own
bookkeeping; with no EWMH window manager, listing, focus, move and resize fall back to plain X
calls and the rest answers 503 WINDOW_MANAGER_UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from Xlib import X, Xatom
from Xlib.display import Display

from agent.errors import DeadlineExceeded, InvalidArgument, NotFound, Unavailable
from agent.x11 import ewmh
from agent.x11.connection import XConnection

LOG = logging.getLogger(__name__)

SETTLE_TIMEOUT = 2.0  # seconds to wait for the WM to carry out a request
POLL_INTERVAL = 0.01

_STATE_REMOVE, _STATE_ADD = 0, 1
_MOVERESIZE_X, _MOVERESIZE_Y, _MOVERESIZE_W, _MOVERESIZE_H = 1 << 8, 1 << 9, 1 << 10, 1 << 11
_STATIC_GRAVITY = 10
_HEX_ID = re.compile(r"^(0[xX][0-9a-fA-F]{1,8}|[0-9]{1,10})$")


class WindowManagerUnavailable(Unavailable):
    code = "WINDOW_MANAGER_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class Extents:
    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0


@dataclass(frozen=True, slots=True)
class WindowInfo:
    id: int
    title: str
    wm_class: str
    instance: str
    x: int
    y: int
    width: int
    height: int
    frame: Extents
    pid: int | None
    focused: bool
    minimized: bool
    maximized: bool
    desktop: int | None  # -1: on all desktops

    @property
    def hex_id(self) -> str:
        return format_window_id(self.id)


def format_window_id(window: int) -> str:
    return f"0x{window:x}"


def parse_window_id(text: str) -> int:
    """Accept ``0x2200003`` (as listed) or a decimal id; anything else is a 400."""
    value = text.strip()
    if not _HEX_ID.match(value):
        raise InvalidArgument(
            f"window_id {text!r} is not a window id such as '0x2200003'", details={"window_id": text}
        )
    window = int(value, 16) if value.lower().startswith("0x") else int(value)
    if not 0 < window <= 0xFFFFFFFF:
        raise InvalidArgument(f"window_id {text!r} is out of range", details={"window_id": text})
    return window


class WindowService:
    """Window management on a dedicated X connection; every method is a coroutine."""

    def __init__(self, conn: XConnection) -> None:
        self._conn = conn
        self._atoms: ewmh.Atoms | None = None
        self._atoms_generation = -1
        self._wm_check: int | None = None

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
        return await self._conn.run(self._list)

    async def get(self, window: int) -> WindowInfo:
        return await self._conn.run(lambda d: self._get(d, window))

    async def active(self) -> int | None:
        return await self._conn.run(self._active)

    async def wm_name(self) -> str | None:
        """The running EWMH window manager's name, None when there is none."""

        def read(display: Display) -> str | None:
            found = ewmh.supporting_wm(display, self._atoms_of(display))
            return found[1] if found else None

        return await self._conn.run(read)

    # -- operations ----------------------------------------------------------------------
    async def focus(self, window: int) -> None:
        """Activate and raise, de-iconifying if needed; returns once the WM made it active."""
        has_wm = await self._conn.run(lambda d: self._focus(d, window))
        if not has_wm:
            return
        try:
            await self._wait(window, lambda w: w.focused and not w.minimized, "activate")
        except DeadlineExceeded:
            # Some WMs refuse activation requests in odd states; set focus ourselves.
            LOG.info("window manager did not activate %s; setting focus directly", format_window_id(window))
            await self._conn.run(lambda d: self._focus_directly(d, window))
            await self._wait(window, lambda w: w.focused, "focus")

    async def move(self, window: int, x: int, y: int) -> None:
        await self._restore_if_maximized(window)
        await self._conn.run(lambda d: self._moveresize(d, window, x=x, y=y))
        await self._wait(window, lambda w: (w.x, w.y) == (x, y), "move", strict=False)

    async def resize(self, window: int, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise InvalidArgument(f"size {width}x{height} must be positive")
        await self._restore_if_maximized(window)
        await self._conn.run(lambda d: self._moveresize(d, window, width=width, height=height))
        await self._wait(window, lambda w: (w.width, w.height) == (width, height), "resize", strict=False)

    async def maximize(self, window: int) -> None:
        info = await self.get(window)
        if info.minimized:
            await self.focus(window)
        await self._conn.run(lambda d: self._set_maximized(d, window, True))
        await self._wait(window, lambda w: w.maximized, "maximize")

    async def minimize(self, window: int) -> None:
        def send(display: Display) -> None:
            atoms = self._require_wm(display, "minimize")
            self._ensure_managed(display, window)
            ewmh.client_message(display, window, atoms["WM_CHANGE_STATE"], [ewmh.WM_STATE_ICONIC])
            display.flush()

        await self._conn.run(send)
        await self._wait(window, lambda w: w.minimized, "minimize")

    async def close_window(self, window: int) -> None:
        """Ask politely (_NET_CLOSE_WINDOW / WM_DELETE_WINDOW): the app may ask to save first."""
        await self._conn.run(lambda d: self._close(d, window))

    # -- X thread ------------------------------------------------------------------------
    def _atoms_of(self, display: Display) -> ewmh.Atoms:
        if self._atoms is None or self._atoms_generation != self._conn.generation:
            self._atoms = ewmh.Atoms(display)
            self._atoms_generation = self._conn.generation
        return self._atoms

    def _client_ids(self, display: Display) -> tuple[list[int], int | None, bool]:
        """Managed windows, the active one, and whether an EWMH WM answers (one round trip).

        The WM check window is re-verified on every call (its self-pointer is fetched in the
        same pipeline), so a dead WM's stale root properties are never trusted.
        """
        atoms = self._atoms_of(display)
        root = display.screen().root.id
        cached = self._wm_check
        batch = ewmh.Batch(display)
        batch.prop(root, atoms["_NET_CLIENT_LIST"], Xatom.WINDOW)
        batch.prop(root, atoms["_NET_ACTIVE_WINDOW"], Xatom.WINDOW)
        batch.prop(root, atoms["_NET_SUPPORTING_WM_CHECK"], Xatom.WINDOW)
        if cached:
            batch.prop(cached, atoms["_NET_SUPPORTING_WM_CHECK"], Xatom.WINDOW)
        replies = [ewmh.as_prop(r) for r in batch.collect()]
        clients, active, check = replies[:3]
        check_id = check.first_int() if check else None
        if cached and check_id == cached and replies[3] is not None and replies[3].first_int() == cached:
            alive = True
        else:
            found = ewmh.supporting_wm(display, atoms) if check_id else None
            self._wm_check = found[0] if found else None
            alive = found is not None
        if clients is not None and alive:
            return clients.ints(), active.first_int() if active else None, True
        focus = display.get_input_focus().focus
        return self._unmanaged_ids(display), focus if isinstance(focus, int) else focus.id, False

    def _unmanaged_ids(self, display: Display) -> list[int]:
        """Without a WM: mapped, non-override-redirect root children with a WM_CLASS."""
        children = [child.id for child in display.screen().root.query_tree().children]
        batch = ewmh.Batch(display)
        for child in children:
            batch.attributes(child)
            batch.prop(child, Xatom.WM_CLASS, Xatom.STRING)
        replies = batch.collect()
        found = []
        for i, child in enumerate(children):
            attrs, wm_class = replies[2 * i], ewmh.as_prop(replies[2 * i + 1])
            if attrs is None or attrs.override_redirect or attrs.map_state != X.IsViewable:
                continue
            if wm_class is not None:
                found.append(child)
        return found

    def _list(self, display: Display) -> list[WindowInfo]:
        ids, active, _ = self._client_ids(display)
        return self._describe(display, ids, active)

    def _describe(self, display: Display, ids: list[int], active: int | None) -> list[WindowInfo]:
        atoms = self._atoms_of(display)
        root = display.screen().root.id
        batch = ewmh.Batch(display)
        per_window = 10
        for window in ids:
            batch.prop(window, atoms["_NET_WM_NAME"], atoms["UTF8_STRING"])
            batch.prop(window, Xatom.WM_NAME)
            batch.prop(window, Xatom.WM_CLASS, Xatom.STRING)
            batch.prop(window, atoms["_NET_WM_PID"], Xatom.CARDINAL)
            batch.prop(window, atoms["_NET_WM_STATE"], Xatom.ATOM)
            batch.prop(window, atoms["_NET_WM_DESKTOP"], Xatom.CARDINAL)
            batch.prop(window, atoms["_NET_FRAME_EXTENTS"], Xatom.CARDINAL)
            batch.prop(window, atoms["WM_STATE"], atoms["WM_STATE"])
            batch.geometry(window)
            batch.translate(window, root)
        replies = batch.collect()
        hidden, max_v, max_h = (
            atoms["_NET_WM_STATE_HIDDEN"],
            atoms["_NET_WM_STATE_MAXIMIZED_VERT"],
            atoms["_NET_WM_STATE_MAXIMIZED_HORZ"],
        )
        windows = []
        for i, window in enumerate(ids):
            chunk = replies[i * per_window : (i + 1) * per_window]
            geometry, origin = chunk[8], chunk[9]
            if geometry is None or origin is None:
                continue  # closed while we were looking
            net_name, wm_name, wm_class, pid, state, desktop, extents, wm_state = (
                ewmh.as_prop(r) for r in chunk[:8]
            )
            title = net_name.text() if net_name else wm_name.text() if wm_name else ""
            class_parts = wm_class.text().split("\0") if wm_class else []
            states = set(state.ints()) if state else set()
            frame = extents.ints() if extents else []
            desk = desktop.first_int() if desktop else None
            windows.append(
                WindowInfo(
                    id=window,
                    title=title,
                    wm_class=class_parts[1] if len(class_parts) > 1 else "",
                    instance=class_parts[0] if class_parts else "",
                    x=int(origin.x),
                    y=int(origin.y),
                    width=int(geometry.width),
                    height=int(geometry.height),
                    frame=Extents(*frame[:4]) if len(frame) >= 4 else Extents(),
                    pid=pid.first_int() if pid else None,
                    focused=window == active,
                    minimized=hidden in states
                    or (wm_state is not None and wm_state.first_int() == ewmh.WM_STATE_ICONIC),
                    maximized=max_v in states and max_h in states,
                    desktop=-1 if desk == ewmh.ALL_DESKTOPS else desk,
                )
            )
        return windows

    def _get(self, display: Display, window: int) -> WindowInfo:
        ids, active, _ = self._client_ids(display)
        if window not in ids:
            raise _not_found(window)
        found = self._describe(display, [window], active)
        if not found:
            raise _not_found(window)
        return found[0]

    def _active(self, display: Display) -> int | None:
        return self._client_ids(display)[1]

    def _ensure_managed(self, display: Display, window: int) -> bool:
        ids, _, has_wm = self._client_ids(display)
        if window not in ids:
            raise _not_found(window)
        return has_wm

    def _require_wm(self, display: Display, what: str) -> ewmh.Atoms:
        atoms = self._atoms_of(display)
        if ewmh.supporting_wm(display, atoms) is None:
            raise WindowManagerUnavailable(
                f"cannot {what} a window: no EWMH window manager runs on {self._conn.display_name}",
                details={"hint": "start an EWMH window manager such as xfwm4 or openbox"},
            )
        return atoms

    def _focus(self, display: Display, window: int) -> bool:
        has_wm = self._ensure_managed(display, window)
        if not has_wm:
            self._focus_directly(display, window)
            return False
        atoms = self._atoms_of(display)
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
        has_wm = self._ensure_managed(display, window)
        if not has_wm:
            changes = {
                k: v for k, v in {"x": x, "y": y, "width": width, "height": height}.items() if v is not None
            }
            display.create_resource_object("window", window).configure(**changes)
            return
        atoms = self._atoms_of(display)
        flags = _STATIC_GRAVITY | (ewmh.SOURCE_PAGER << 12)
        flags |= _MOVERESIZE_X if x is not None else 0
        flags |= _MOVERESIZE_Y if y is not None else 0
        flags |= _MOVERESIZE_W if width is not None else 0
        flags |= _MOVERESIZE_H if height is not None else 0
        data = [flags, x or 0, y or 0, width or 0, height or 0]
        ewmh.client_message(display, window, atoms["_NET_MOVERESIZE_WINDOW"], data)
        display.flush()

    def _set_maximized(self, display: Display, window: int, on: bool) -> None:
        atoms = self._require_wm(display, "maximize" if on else "restore")
        self._ensure_managed(display, window)
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
        has_wm = self._ensure_managed(display, window)
        atoms = self._atoms_of(display)
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
            await self._conn.run(lambda d: self._set_maximized(d, window, False))
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


def _not_found(window: int) -> NotFound:
    return NotFound(
        f"no window {format_window_id(window)} (closed, or not a managed top-level window)",
        details={"window_id": format_window_id(window)},
    )
