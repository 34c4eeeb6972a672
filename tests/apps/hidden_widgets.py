#!/usr/bin/python3
"""A real GTK 3 app with widgets that exist but are not showing: the tests' fixture for
``visible_only`` and for refusing to click what is not on screen.

Run with Debian's /usr/bin/python3 (python3-gi). A window holds a notebook: page one shows the
button "Shown button"; page two (not the current page, so not showing) holds "Page two button"
at the same place; below the notebook sits "Hidden button", created and then hidden. Every
click prints ``{"event": "clicked", "name": ...}``, and ``{"event": "ready"}`` once mapped.
"""

import json
import sys
from typing import Any

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import GLib, Gtk  # noqa: E402


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def button(name: str) -> Any:
    made = Gtk.Button(label=name)
    made.set_size_request(300, 120)
    made.connect("clicked", lambda _: emit(event="clicked", name=name))
    return made


def main() -> None:
    title = sys.argv[1] if len(sys.argv) > 1 else "hidden-widgets"
    window = Gtk.Window(title=title)
    window.set_default_size(500, 400)
    window.move(80, 80)
    box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL)
    notebook = Gtk.Notebook()
    notebook.append_page(button("Shown button"), Gtk.Label(label="Page one"))
    notebook.append_page(button("Page two button"), Gtk.Label(label="Page two"))
    hidden = button("Hidden button")
    hidden.set_no_show_all(True)  # show_all() below leaves it hidden
    box.pack_start(notebook, True, True, 0)
    box.pack_start(hidden, False, False, 0)
    window.add(box)
    window.connect("destroy", Gtk.main_quit)

    def ready() -> bool:
        emit(event="ready")
        return False  # once

    window.connect("map-event", lambda *a: GLib.timeout_add(300, ready) and False)
    window.show_all()
    hidden.hide()
    Gtk.main()


if __name__ == "__main__":
    main()
