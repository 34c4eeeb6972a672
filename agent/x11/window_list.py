"""Reading windows: the WM's client list and every window's EWMH/ICCCM properties.

Runs on the windows connection's thread (``XConnection.run``). Listed are the WM's client
windows (``_NET_CLIENT_LIST``) except the desktop background and docks/panels, which are not
application windows; without an EWMH window manager, the mapped top-level windows that have a
WM_CLASS. Geometry is the client area (what the application draws) in root coordinates, so a
screenshot pixel inside ``x..x+width`` is inside the window's content; ``frame`` gives the
decoration the WM adds around it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from Xlib import X, Xatom, error
from Xlib.display import Display
from Xlib.ext import res

from agent.errors import InvalidArgument, WindowManagerUnavailable, WindowNotFound
from agent.x11 import ewmh
from agent.x11.connection import XConnection, format_window_id

_STRUCTURE_EVENTS = frozenset(
    {X.ConfigureNotify, X.MapNotify, X.UnmapNotify, X.ReparentNotify, X.DestroyNotify, X.GravityNotify}
)
_HEX_ID = re.compile(r"^(0[xX][0-9a-fA-F]{1,8}|[0-9]{1,10})$")


@dataclass(frozen=True, slots=True)
class Decoration:
    """The frame a window manager draws around a client area, in pixels per side
    (``_NET_FRAME_EXTENTS``; the API's ``FrameExtents`` model)."""

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0


MAX_WINDOW_DEPTH = 16  # nesting followed when looking for the window at a point


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
    frame: Decoration
    pid: int | None
    focused: bool
    minimized: bool
    maximized: bool
    desktop: int | None  # -1: on all desktops

    @property
    def hex_id(self) -> str:
        return format_window_id(self.id)


@dataclass(frozen=True, slots=True)
class WindowAt:
    """The window a click at a point reaches."""

    window: int  # the application window there, else the top-level one (the root when none)
    pid: int | None  # the process behind that window; None when nothing can tell
    client: WindowInfo | None  # the managed application window there; None for menus and popups
    windows: list[WindowInfo]  # every application window, as /desktop/windows lists them


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


class WindowReader:
    """Pipelined reads of the window list; caches atoms and the verified WM check window."""

    def __init__(self, conn: XConnection) -> None:
        self._conn = conn
        self._atoms: ewmh.Atoms | None = None
        self._atoms_generation = -1
        self._wm_check: int | None = None
        # Window id -> its description (None: not an application window), kept while no event
        # says it changed. Only used with an EWMH WM; dropped on reconnect.
        self._cache: dict[int, WindowInfo | None] = {}
        self._cache_generation = -1
        self._root = 0
        conn.on_connect(self._on_connect)
        conn.on_event(self._on_event)

    # -- the cache -----------------------------------------------------------------------
    def _on_connect(self, display: Display) -> None:
        root = display.screen().root
        self._root = root.id
        # Frames are root children: their moves, maps and unmaps show up here.
        root.change_attributes(event_mask=X.SubstructureNotifyMask)
        self._cache.clear()

    def _on_event(self, display: Display, ev: Any) -> None:
        """Forget what an event says changed (runs on the X thread as events are read)."""
        if ev.type == X.PropertyNotify:
            self._cache.pop(ev.window.id, None)
        elif ev.type in _STRUCTURE_EVENTS:
            if getattr(ev, "override", False):
                return  # menus and tooltips do not move application windows
            owner = ev.event.id
            if owner == self._root:
                self._cache.clear()  # a frame moved or changed: client positions may have too
            else:
                self._cache.pop(owner, None)
                self._cache.pop(ev.window.id, None)

    def atoms(self, display: Display) -> ewmh.Atoms:
        if self._atoms is None or self._atoms_generation != self._conn.generation:
            self._atoms = ewmh.Atoms(display)
            self._atoms_generation = self._conn.generation
        return self._atoms

    def client_ids(self, display: Display) -> tuple[list[int], int | None, bool]:
        """Managed windows, the active one, and whether an EWMH WM answers (one round trip).

        The WM check window is re-verified on every call (its self-pointer is fetched in the
        same pipeline), so a dead WM's stale root properties are never trusted.
        """
        atoms = self.atoms(display)
        root = display.screen().root.id
        cached = self._wm_check
        batch = ewmh.Batch(display)
        batch.prop(root, atoms["_NET_CLIENT_LIST"], Xatom.WINDOW)
        batch.prop(root, atoms["_NET_ACTIVE_WINDOW"], Xatom.WINDOW)
        batch.prop(root, atoms["_NET_SUPPORTING_WM_CHECK"], Xatom.WINDOW)
        if cached:
            batch.prop(cached, atoms["_NET_SUPPORTING_WM_CHECK"], Xatom.WINDOW)
        replies = [ewmh.as_prop(r) for r in batch.collect()]
        # That round trip was a sync: every event about a change before it is queued now.
        self._conn.drain_events(display)
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

    def list_all(self, display: Display) -> list[WindowInfo]:
        ids, active, has_wm = self.client_ids(display)
        return self.describe(display, ids, active, cached=has_wm)

    def describe(
        self, display: Display, ids: list[int], active: int | None, *, cached: bool = True
    ) -> list[WindowInfo]:
        """Describe ``ids`` in order, from the cache where no event invalidated an entry."""
        if self._cache_generation != self._conn.generation:
            self._cache.clear()
            self._cache_generation = self._conn.generation
        missing = [w for w in ids if w not in self._cache] if cached else ids
        fresh = self._read(display, missing, select=cached) if missing else {}
        if cached:
            self._cache.update(fresh)
            if len(self._cache) > 4 * len(ids) + 64:  # forget windows that left the list
                keep = set(ids)
                self._cache = {w: info for w, info in self._cache.items() if w in keep}
        source = self._cache if cached else fresh
        windows = []
        for window in ids:
            info = source.get(window)
            if info is not None:
                windows.append(replace(info, focused=True) if window == active else info)
        return windows

    def _read(self, display: Display, ids: list[int], *, select: bool) -> dict[int, WindowInfo | None]:
        """One pipelined read of every property of ``ids``; with ``select``, first ask for the
        events that will say when any of it changes."""
        atoms = self.atoms(display)
        if select:
            for window in ids:
                display.create_resource_object("window", window).change_attributes(
                    event_mask=X.PropertyChangeMask | X.StructureNotifyMask, onerror=_ignore_error
                )
        root = display.screen().root.id
        batch = ewmh.Batch(display)
        per_window = 11
        for window in ids:
            batch.prop(window, atoms["_NET_WM_NAME"])
            batch.prop(window, Xatom.WM_NAME)
            batch.prop(window, Xatom.WM_CLASS, Xatom.STRING)
            batch.prop(window, atoms["_NET_WM_PID"], Xatom.CARDINAL)
            batch.prop(window, atoms["_NET_WM_STATE"], Xatom.ATOM)
            batch.prop(window, atoms["_NET_WM_DESKTOP"], Xatom.CARDINAL)
            batch.prop(window, atoms["_NET_FRAME_EXTENTS"], Xatom.CARDINAL)
            batch.prop(window, atoms["WM_STATE"], atoms["WM_STATE"])
            batch.geometry(window)
            batch.translate(window, root)
            batch.prop(window, atoms["_NET_WM_WINDOW_TYPE"], Xatom.ATOM)
        replies = batch.collect()
        not_apps = {atoms["_NET_WM_WINDOW_TYPE_DESKTOP"], atoms["_NET_WM_WINDOW_TYPE_DOCK"]}
        hidden, max_v, max_h = (
            atoms["_NET_WM_STATE_HIDDEN"],
            atoms["_NET_WM_STATE_MAXIMIZED_VERT"],
            atoms["_NET_WM_STATE_MAXIMIZED_HORZ"],
        )
        windows: dict[int, WindowInfo | None] = {}
        for i, window in enumerate(ids):
            chunk = replies[i * per_window : (i + 1) * per_window]
            geometry, origin, kind = chunk[8], chunk[9], ewmh.as_prop(chunk[10])
            if geometry is None or origin is None:
                continue  # closed while we were looking
            if kind is not None and not_apps.intersection(kind.ints()):
                windows[window] = None  # the desktop background and panels are not app windows
                continue
            net_name, wm_name, wm_class, pid, state, desktop, extents, wm_state = (
                ewmh.as_prop(r) for r in chunk[:8]
            )
            title = net_name.utf8() if net_name else wm_name.text(atoms["COMPOUND_TEXT"]) if wm_name else ""
            class_parts = wm_class.text().split("\0") if wm_class else []
            states = set(state.ints()) if state else set()
            frame = extents.ints() if extents else []
            desk = desktop.first_int() if desktop else None
            windows[window] = WindowInfo(
                id=window,
                title=title,
                wm_class=class_parts[1] if len(class_parts) > 1 else "",
                instance=class_parts[0] if class_parts else "",
                x=int(origin.x),
                y=int(origin.y),
                width=int(geometry.width),
                height=int(geometry.height),
                frame=Decoration(*frame[:4]) if len(frame) >= 4 else Decoration(),
                pid=pid.first_int() if pid else None,
                focused=False,
                # With an EWMH WM, _NET_WM_STATE_HIDDEN; WM_STATE alone is not enough (openbox
                # marks windows on other workspaces Iconic too).
                minimized=hidden in states
                if state is not None
                else wm_state is not None and wm_state.first_int() == ewmh.WM_STATE_ICONIC,
                maximized=max_v in states and max_h in states,
                desktop=-1 if desk == ewmh.ALL_DESKTOPS else desk,
            )
        return self._fill_pids(display, windows)

    def _fill_pids(
        self, display: Display, windows: dict[int, WindowInfo | None]
    ) -> dict[int, WindowInfo | None]:
        """Ask the server (X-Resource) for the PID of windows whose app sets no _NET_WM_PID
        (xeyes, xlogo, many Xaw/Motif apps): one request for all of them; local clients only."""
        missing = [w for w, info in windows.items() if info is not None and info.pid is None]
        pids = owner_pids(display, missing)
        for window in missing:
            info = windows[window]
            if window in pids and info is not None:
                windows[window] = replace(info, pid=pids[window])
        return windows

    def window_at(self, display: Display, x: int, y: int) -> WindowAt:
        """What a click at (x, y) reaches: the windows there from the root down (the server's
        own answer, stacking order and input shapes included), the application window among
        them, and the process behind it."""
        root = display.screen().root
        ids, active, has_wm = self.client_ids(display)
        managed = set(ids)
        chain: list[int] = []
        parent = root
        for _ in range(MAX_WINDOW_DEPTH):
            try:
                child = parent.translate_coords(root, x, y).child
            except error.XError:  # the window went away while we looked: stop at its parent
                break
            if not child:
                break
            chain.append(child.id)
            if child.id in managed:
                break  # the application window: what lies inside it is the application's
            parent = child
        if not chain:
            return WindowAt(window=root.id, pid=None, client=None, windows=[])
        windows = self.describe(display, ids, active, cached=has_wm)
        inside = set(chain)
        client = next((w for w in windows if w.id in inside), None)
        if client is not None:
            # Its application answers the click, whoever made the child window that takes it
            # (Chromium's GPU process draws into a child of the browser's window).
            return WindowAt(window=client.id, pid=client.pid, client=client, windows=windows)
        top = chain[0]  # a menu or popup, or a window manager's frame or panel
        return WindowAt(window=top, pid=owner_pids(display, [top]).get(top), client=None, windows=windows)

    def get(self, display: Display, window: int) -> WindowInfo:
        ids, active, has_wm = self.client_ids(display)
        if window not in ids:
            raise not_found(window)
        found = self.describe(display, [window], active, cached=has_wm)
        if not found:
            raise not_found(window)
        return found[0]

    def active(self, display: Display) -> int | None:
        return self.client_ids(display)[1]

    def ensure_managed(self, display: Display, window: int) -> bool:
        ids, _, has_wm = self.client_ids(display)
        if window not in ids:
            raise not_found(window)
        return has_wm

    def require_wm(self, display: Display, what: str) -> ewmh.Atoms:
        atoms = self.atoms(display)
        if ewmh.supporting_wm(display, atoms) is None:
            raise WindowManagerUnavailable(
                f"cannot {what} a window: no EWMH window manager runs on {self._conn.display_name}",
                details={"hint": "start an EWMH window manager such as xfwm4 or openbox"},
            )
        return atoms


def owner_pids(display: Display, windows: list[int]) -> dict[int, int]:
    """The PIDs of the processes that created ``windows`` (X-Resource; local clients only)."""
    if not windows or not display.has_extension(res.extname):
        return {}
    mask = display.display.info.resource_id_mask
    try:
        reply = res.QueryClientIds(
            display=display.display,
            opcode=display.display.get_extension_major(res.extname),
            specs=[{"client": w, "mask": res.LocalClientPIDMask} for w in windows],
        )
    except error.XError:
        return {}
    by_client = {int(item.spec.client) & ~mask: int(item.value[0]) for item in reply.ids if item.value}
    return {w: by_client[w & ~mask] for w in windows if by_client.get(w & ~mask)}


def _ignore_error(err: object, request: object) -> bool:
    """The window vanished before we could watch it; the read that follows notices that.

    True tells python-xlib the error is handled; anything falsy hands it on to the connection's
    trap, which fails the whole call.
    """
    return True


def not_found(window: int) -> WindowNotFound:
    return WindowNotFound(format_window_id(window), "closed, or not a managed top-level window")
