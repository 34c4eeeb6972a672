"""Low-level EWMH/ICCCM reads and client messages, shared by windows, launcher and environment.

Why pipelining: listing windows needs ~8 property and geometry requests per window. Sent one
by one, each costs a round trip to the X server; sent deferred (python-xlib's ``defer=True``) and
then collected, the whole list costs about one round trip. Everything here runs on the thread
that owns the ``Display`` (``XConnection.run``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from Xlib import X, Xatom, error
from Xlib.display import Display
from Xlib.protocol import event, request

from agent.x11.ctext import decode_compound_text

ANY_PROPERTY_TYPE = X.AnyPropertyType
# Enough for any title or class; longer values are truncated by the server, which is harmless.
PROPERTY_LENGTH = 1024  # in 32-bit units

# _NET_WM_DESKTOP value meaning "on all desktops".
ALL_DESKTOPS = 0xFFFFFFFF

# EWMH source indication: 2 = a pager / taskbar, which WMs obey without focus-stealing checks.
SOURCE_PAGER = 2

WM_STATE_ICONIC = 3

ATOM_NAMES = (
    "_NET_SUPPORTED",
    "_NET_SUPPORTING_WM_CHECK",
    "_NET_CLIENT_LIST",
    "_NET_ACTIVE_WINDOW",
    "_NET_CURRENT_DESKTOP",
    "_NET_WM_NAME",
    "_NET_WM_PID",
    "_NET_WM_DESKTOP",
    "_NET_WM_STATE",
    "_NET_WM_STATE_HIDDEN",
    "_NET_WM_STATE_MAXIMIZED_VERT",
    "_NET_WM_STATE_MAXIMIZED_HORZ",
    "_NET_WM_STATE_FULLSCREEN",
    "_NET_FRAME_EXTENTS",
    "_NET_CLOSE_WINDOW",
    "_NET_MOVERESIZE_WINDOW",
    "_NET_WM_WINDOW_TYPE",
    "_NET_WM_WINDOW_TYPE_DESKTOP",
    "_NET_WM_WINDOW_TYPE_DOCK",
    "UTF8_STRING",
    "COMPOUND_TEXT",
    "WM_STATE",
    "WM_CHANGE_STATE",
    "WM_PROTOCOLS",
    "WM_DELETE_WINDOW",
)


class Atoms:
    """Interned atoms for one connection (atoms are per server, so re-intern on reconnect)."""

    def __init__(self, display: Display) -> None:
        self._ids: dict[str, int] = {}
        pending = [
            (name, request.InternAtom(display=display.display, defer=True, name=name, only_if_exists=False))
            for name in ATOM_NAMES
        ]
        for name, req in pending:
            req.reply()
            self._ids[name] = int(req.atom)

    def __getitem__(self, name: str) -> int:
        return self._ids[name]


@dataclass(frozen=True, slots=True)
class Prop:
    """A property value as read: its type atom, format and items (bytes for 8-bit, ints else)."""

    type: int
    format: int
    value: Any

    def ints(self) -> list[int]:
        return [int(v) for v in self.value] if self.format == 32 else []

    def first_int(self) -> int | None:
        values = self.ints()
        return values[0] if values else None

    def utf8(self) -> str:
        """Decode as UTF-8 whatever the declared type (EWMH names are UTF-8; some tools such as
        xdotool declare them STRING)."""
        data = self.value if isinstance(self.value, bytes) else bytes(self.value or b"")
        return data.decode("utf-8", "replace")

    def text(self, compound_text: int = 0) -> str:
        """Decode a text property: STRING is Latin-1 (ICCCM), COMPOUND_TEXT is ISO 2022 (pass
        its atom), UTF8_STRING and anything else UTF-8."""
        data = self.value if isinstance(self.value, bytes) else bytes(self.value or b"")
        if self.type == Xatom.STRING:
            return data.decode("latin-1")
        if compound_text and self.type == compound_text:
            return decode_compound_text(data)
        return data.decode("utf-8", "replace")


class Batch:
    """Pipelined requests: queue them all, then read the replies (one round trip overall).

    A request whose window vanished answers BadWindow; that shows up as ``None`` / ``STALE``
    for that item only, so one closing window never fails a whole listing.
    """

    def __init__(self, display: Display) -> None:
        self._raw = display.display
        self._requests: list[Any] = []

    def prop(self, window: int, atom: int, kind: int = ANY_PROPERTY_TYPE) -> int:
        self._requests.append(
            request.GetProperty(
                display=self._raw,
                defer=True,
                delete=False,
                window=window,
                property=atom,
                type=kind,
                long_offset=0,
                long_length=PROPERTY_LENGTH,
            )
        )
        return len(self._requests) - 1

    def geometry(self, window: int) -> int:
        self._requests.append(request.GetGeometry(display=self._raw, defer=True, drawable=window))
        return len(self._requests) - 1

    def translate(self, window: int, root: int) -> int:
        self._requests.append(
            request.TranslateCoords(
                display=self._raw, defer=True, src_wid=window, dst_wid=root, src_x=0, src_y=0
            )
        )
        return len(self._requests) - 1

    def attributes(self, window: int) -> int:
        self._requests.append(request.GetWindowAttributes(display=self._raw, defer=True, window=window))
        return len(self._requests) - 1

    def collect(self, *, tolerate: bool = True) -> list[Any]:
        """Wait for every reply; a failed request yields ``None`` (``tolerate=False``: raises)."""
        replies: list[Any] = []
        for req in self._requests:
            try:
                req.reply()
            except (error.BadWindow, error.BadDrawable, error.BadMatch, error.BadValue):
                if not tolerate:
                    raise
                replies.append(None)
                continue
            replies.append(req)
        return replies


def as_prop(reply: Any) -> Prop | None:
    """Turn a GetProperty reply into a ``Prop`` (``None`` when unset or the window is gone)."""
    if reply is None or not reply.property_type:
        return None
    fmt, value = reply.value
    return Prop(int(reply.property_type), int(fmt), value)


def read_prop(display: Display, window: int, atom: int, kind: int = ANY_PROPERTY_TYPE) -> Prop | None:
    """One property (``None`` when unset). Unlike a ``Batch``, a window that is gone raises its
    BadWindow, which the connection reports as that window's 404."""
    batch = Batch(display)
    batch.prop(window, atom, kind)
    return as_prop(batch.collect(tolerate=False)[0])


def supporting_wm(display: Display, atoms: Atoms) -> tuple[int, str] | None:
    """The EWMH WM's check window and name, or None when no EWMH window manager runs.

    The check window must point at itself; a stale property left by a dead WM does not.
    """
    root = display.screen().root.id
    check = read_prop(display, root, atoms["_NET_SUPPORTING_WM_CHECK"], Xatom.WINDOW)
    child = check.first_int() if check else None
    if not child:
        return None
    batch = Batch(display)
    batch.prop(child, atoms["_NET_SUPPORTING_WM_CHECK"], Xatom.WINDOW)
    batch.prop(child, atoms["_NET_WM_NAME"])
    self_check, name = (as_prop(reply) for reply in batch.collect())
    if self_check is None or self_check.first_int() != child:
        return None
    return child, name.text() if name else ""


def client_message(
    display: Display,
    window: int,
    message_type: int,
    data: Sequence[int],
    *,
    to: int | None = None,
) -> None:
    """Send an EWMH client message about ``window`` to the root (as the spec requires).

    The five values are 32-bit fields; signed ones (a position left of or above the screen) go
    as two's complement, which python-xlib's unsigned packing would refuse (OverflowError).
    """
    root = display.screen().root
    values = [value & 0xFFFFFFFF for value in [*data, 0, 0, 0, 0, 0][:5]]
    ev = event.ClientMessage(window=window, client_type=message_type, data=(32, values))
    target = root if to is None else display.create_resource_object("window", to)
    mask = X.SubstructureRedirectMask | X.SubstructureNotifyMask if to is None else X.NoEventMask
    target.send_event(ev, event_mask=mask)
