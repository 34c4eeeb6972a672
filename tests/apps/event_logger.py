#!/usr/bin/python3
"""A real GTK 3 app that prints what it receives as JSON lines: the tests' independent observer.

Run with Debian's /usr/bin/python3 (python3-gi). It shows one window filling most of the
screen, and prints every button press/release (with GTK's click-count event types), scroll,
pointer motion with a button held, key press (keyval name and the Unicode text GTK made of it),
and the text of its entry when Return is pressed.

A line ``sync N`` on its stdin is answered with ``{"event": "sync", "n": N}`` once every X event
generated before it has been handled. The app changes a property of its own window: the server
queues the PropertyNotify behind every event it sent the app before, and GTK dispatches events in
order, so the notify's handler runs after theirs. (A round trip followed by an idle callback was
not enough: between its frame clock's flush and paint GTK holds X events back for up to a frame,
and the idle callback ran in that gap, answering before keys already received were handled.)
"""

import json
import sys
from typing import Any

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
gi.require_version("GdkX11", "3.0")
from gi.repository import Gdk, GdkX11, GLib, Gtk  # noqa: E402  (GdkX11: get_xid, set_utf8_property)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def on_button(widget: Any, event: Any) -> bool:
    kinds = {
        Gdk.EventType.BUTTON_PRESS: "press",
        Gdk.EventType._2BUTTON_PRESS: "double",
        Gdk.EventType._3BUTTON_PRESS: "triple",
        Gdk.EventType.BUTTON_RELEASE: "release",
    }
    state = event.state
    emit(
        event="button",
        kind=kinds.get(event.type, str(event.type)),
        button=event.button,
        x=int(event.x_root),
        y=int(event.y_root),
        ctrl=bool(state & Gdk.ModifierType.CONTROL_MASK),
        shift=bool(state & Gdk.ModifierType.SHIFT_MASK),
    )
    return True


def on_scroll(widget: Any, event: Any) -> bool:
    direction = {
        Gdk.ScrollDirection.UP: "up",
        Gdk.ScrollDirection.DOWN: "down",
        Gdk.ScrollDirection.LEFT: "left",
        Gdk.ScrollDirection.RIGHT: "right",
    }.get(event.direction, "smooth")
    emit(event="scroll", direction=direction, x=int(event.x_root), y=int(event.y_root))
    return True


def on_motion(widget: Any, event: Any) -> bool:
    if event.state & Gdk.ModifierType.BUTTON1_MASK:
        emit(event="drag-motion", x=int(event.x_root), y=int(event.y_root))
    return False


def on_key(widget: Any, event: Any) -> bool:
    emit(
        event="key", keyval=Gdk.keyval_name(event.keyval), text=chr(Gdk.keyval_to_unicode(event.keyval) or 0)
    )
    return False


SYNC_PROPERTY = "_EVENT_LOGGER_SYNC"
pending_syncs: list[int] = []


def on_property(widget: Any, event: Any) -> bool:
    if event.atom.name() == SYNC_PROPERTY and pending_syncs:
        emit(event="sync", n=pending_syncs.pop(0))
    return False


def on_command(channel: Any, condition: Any, window: Any) -> bool:
    line = channel.readline()
    if not line:
        Gtk.main_quit()
        return False
    words = line.split()
    if words[:1] == ["sync"]:
        pending_syncs.append(int(words[1]))
        GdkX11.X11Window.set_utf8_property(window.get_window(), SYNC_PROPERTY, words[1])
    return True


def main() -> None:
    title = sys.argv[1] if len(sys.argv) > 1 else "event-logger"
    window = Gtk.Window(title=title)
    window.add_events(Gdk.EventMask.PROPERTY_CHANGE_MASK)
    window.connect("property-notify-event", on_property)
    window.set_default_size(900, 560)
    window.move(60, 60)
    box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL)
    entry = Gtk.Entry()
    entry.connect("activate", lambda e: emit(event="entry", text=e.get_text()))
    entry.connect("key-press-event", on_key)
    area = Gtk.EventBox()
    area.set_size_request(900, 500)
    area.add_events(
        Gdk.EventMask.BUTTON_PRESS_MASK
        | Gdk.EventMask.BUTTON_RELEASE_MASK
        | Gdk.EventMask.SCROLL_MASK
        | Gdk.EventMask.POINTER_MOTION_MASK
    )
    area.connect("button-press-event", on_button)
    area.connect("button-release-event", on_button)
    area.connect("scroll-event", on_scroll)
    area.connect("motion-notify-event", on_motion)
    box.pack_start(entry, False, False, 0)
    box.pack_start(area, True, True, 0)
    window.add(box)
    window.connect("destroy", Gtk.main_quit)

    def mapped(*_: Any) -> bool:
        entry.grab_focus()
        alloc = area.get_allocation()
        origin = area.get_window().get_origin()
        emit(
            event="ready",
            window=window.get_window().get_xid(),
            area_x=origin.x,
            area_y=origin.y,
            area_width=alloc.width,
            area_height=alloc.height,
        )
        return False

    window.connect("map-event", lambda *a: GLib.timeout_add(300, mapped) and False)
    window.show_all()
    stdin = GLib.IOChannel.unix_new(sys.stdin.fileno())
    GLib.io_add_watch(
        stdin, GLib.PRIORITY_DEFAULT, GLib.IOCondition.IN | GLib.IOCondition.HUP, on_command, window
    )
    Gtk.main()


if __name__ == "__main__":
    main()
