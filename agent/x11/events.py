"""What changes on the desktop, as the X server reports it: windows, the clipboard, the screen.

Why its own connection and thread: the monitor must read events the moment they come, for as
long as the agent runs, without ever delaying input or screenshots (which have connections of
their own). The thread sleeps in ``select`` on the X socket and a wake-up pipe; nothing polls.

What it listens to: PropertyNotify on the root (``_NET_CLIENT_LIST``, ``_NET_ACTIVE_WINDOW``),
SubstructureNotify on the root (frames mapped, unmapped, moved) and StructureNotify on the root
(its size), PropertyNotify and StructureNotify on each client (``_NET_WM_NAME``/``WM_NAME``, a
resize inside its frame; selected by ``WindowReader`` when it reads a window), XFixes
selection-owner notifications for CLIPBOARD and RandR screen changes. Window events come from
comparing the window list before and after a batch of X events, so a burst of moves costs one
pipelined read and the events always describe windows as they really are.

The X server going away is survived: the thread reconnects (every ``RECONNECT_DELAY``) and the
next list is compared with the last one known, so windows that vanished with the server are
reported destroyed. Nothing here knows of HTTP or of the event hub: changes go to ``emit``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from Xlib import X, Xatom
from Xlib.display import Display
from Xlib.ext import randr, xfixes

from agent.errors import AgentError
from agent.x11.connection import XConnection, format_window_id
from agent.x11.window_list import WindowInfo, WindowReader

LOG = logging.getLogger(__name__)

RECONNECT_DELAY = 0.5
_CHANGES = frozenset({X.ConfigureNotify, X.MapNotify, X.UnmapNotify, X.DestroyNotify, X.ReparentNotify})


@dataclass(frozen=True, slots=True)
class DesktopChange:
    """One change: ``kind`` is an event type (window.created ...); ``window`` the window it is
    about (its last known state when destroyed); ``fields`` anything else the kind carries."""

    kind: str
    window: WindowInfo | None = None
    fields: tuple[tuple[str, Any], ...] = ()


Emit = Callable[[DesktopChange], None]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    windows: dict[int, WindowInfo]
    active: int | None


class DesktopMonitor:
    """Turns X events into ``DesktopChange``s on a thread of its own."""

    def __init__(self, display_name: str, emit: Emit) -> None:
        self._emit = emit
        self._conn = XConnection(display_name, name="x11-events")
        self._reader = WindowReader(self._conn)  # selects client events as it reads windows
        self._conn.on_connect(self._on_connect)
        self._conn.on_event(self._on_event)
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Only touched on the monitor thread:
        self._atoms: dict[str, int] = {}
        self._root = 0
        self._windows_dirty = True
        self._snapshot: _Snapshot | None = None
        self._screen: tuple[int, int] | None = None
        self._pending_screen: tuple[int, int] | None = None
        self._clipboard_owner: int | None = None
        self._clipboard_changed = False

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="x11-events", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread and close its connection (blocks for at most a few seconds)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- the thread ----------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._conn.call(self._read_changes)  # connects (and selects) when needed
                    self._report()
                    if self._windows_dirty:  # events drained after the last read said so again
                        continue
                except AgentError as exc:  # no display: wait for it to come back
                    LOG.debug("desktop events: %s", exc.message)
                    self._stop.wait(RECONNECT_DELAY)
                    continue
                fds = [self._wake_r]
                fileno = self._conn.fileno()
                if fileno is not None:
                    fds.append(fileno)
                select.select(fds, [], [], None if fileno is not None else RECONNECT_DELAY)
                with contextlib.suppress(OSError):
                    if self._wake_r in fds and select.select([self._wake_r], [], [], 0)[0]:
                        os.read(self._wake_r, 64)
        finally:
            self._conn.disconnect()

    def _on_connect(self, display: Display) -> None:
        root = display.screen().root
        self._root = root.id
        names = ("_NET_CLIENT_LIST", "_NET_ACTIVE_WINDOW", "_NET_WM_NAME", "CLIPBOARD")
        self._atoms = {name: display.intern_atom(name) for name in names}
        root.change_attributes(
            event_mask=X.SubstructureNotifyMask | X.StructureNotifyMask | X.PropertyChangeMask
        )
        if display.has_extension(xfixes.extname):
            display.xfixes_query_version()  # XFixes answers nothing before the version is agreed
            display.xfixes_select_selection_input(
                root,
                self._atoms["CLIPBOARD"],
                xfixes.XFixesSetSelectionOwnerNotifyMask
                | xfixes.XFixesSelectionWindowDestroyNotifyMask
                | xfixes.XFixesSelectionClientCloseNotifyMask,
            )
        if display.has_extension(randr.extname):
            root.xrandr_select_input(randr.RRScreenChangeNotifyMask)
        geometry = root.get_geometry()
        self._note_screen(int(geometry.width), int(geometry.height))
        self._windows_dirty = True

    def _on_event(self, display: Display, ev: Any) -> None:
        """Note what an event changed (on the X thread, as ``XConnection`` drains events)."""
        kind = ev.type
        if kind == X.PropertyNotify:
            atom = ev.atom
            if ev.window.id == self._root:
                if atom in (self._atoms.get("_NET_CLIENT_LIST"), self._atoms.get("_NET_ACTIVE_WINDOW")):
                    self._windows_dirty = True
            elif atom in (self._atoms.get("_NET_WM_NAME"), Xatom.WM_NAME):
                self._windows_dirty = True
        elif kind in _CHANGES:
            if kind == X.ConfigureNotify and ev.window.id == self._root:
                self._note_screen(int(ev.width), int(ev.height))
            elif not getattr(ev, "override", False):  # menus and tooltips are not app windows
                self._windows_dirty = True
        elif isinstance(ev, xfixes.SelectionNotify):
            if ev.selection == self._atoms.get("CLIPBOARD"):
                owner = ev.owner.id if hasattr(ev.owner, "id") else int(ev.owner)
                self._clipboard_owner = owner or None
                self._clipboard_changed = True
        elif isinstance(ev, randr.ScreenChangeNotify):
            self._note_screen(int(ev.width_in_pixels), int(ev.height_in_pixels))

    def _note_screen(self, width: int, height: int) -> None:
        if (width, height) != self._screen:
            if self._screen is not None:
                self._pending_screen = (width, height)
            self._screen = (width, height)

    def _read_changes(self, display: Display) -> None:
        """Re-read the window list while events say it changed (events drained during a read
        may say so again)."""
        for _ in range(8):
            self._conn.drain_events(display)
            if not self._windows_dirty:
                return
            self._windows_dirty = False
            ids, active, has_wm = self._reader.client_ids(display)
            windows = self._reader.describe(display, ids, active, cached=has_wm)
            self._compare(_Snapshot({w.id: w for w in windows}, active))

    # -- turning states into changes -----------------------------------------------------
    def _compare(self, now: _Snapshot) -> None:
        before, self._snapshot = self._snapshot, now
        if before is None:
            return  # the first look: what exists already is no event
        emit = self._emit
        for wid, info in now.windows.items():
            old = before.windows.get(wid)
            if old is None:
                emit(DesktopChange("window.created", info))
                continue
            if old.title != info.title:
                emit(DesktopChange("window.renamed", info, (("old_title", old.title),)))
            if (old.x, old.y) != (info.x, info.y):
                emit(DesktopChange("window.moved", info))
            if (old.width, old.height) != (info.width, info.height):
                emit(DesktopChange("window.resized", info))
        for wid, old in before.windows.items():
            if wid not in now.windows:
                emit(DesktopChange("window.destroyed", old))
        if now.active != before.active:
            focused = now.windows.get(now.active) if now.active else None
            if focused is not None or before.active in before.windows:
                emit(DesktopChange("window.focused", focused))

    def _report(self) -> None:
        """Changes noted outside the window list: the screen and the clipboard."""
        if self._pending_screen is not None:
            width, height = self._pending_screen
            self._pending_screen = None
            self._emit(DesktopChange("screen.resized", None, (("width", width), ("height", height))))
        if self._clipboard_changed:
            self._clipboard_changed = False
            owner = self._clipboard_owner
            self._emit(
                DesktopChange(
                    "clipboard.changed", None, (("owner", format_window_id(owner) if owner else None),)
                )
            )
