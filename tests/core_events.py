"""A plain X client that logs the core pointer and key events it receives, with their state.

Unlike a toolkit it shows the core ``state`` field exactly as the server filled it in when it
delivered the event: which modifiers a click arrived with, after any window manager grab.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass
from typing import Any

from Xlib import X
from Xlib.display import Display


@dataclass(frozen=True)
class CoreEvent:
    kind: str  # press, release, key, keyup
    detail: int  # button number or keycode
    state: int  # modifier and button mask before the event


class CoreEventLogger:
    """A mapped window whose ButtonPress/Release and KeyPress/Release events are read on demand."""

    KINDS = {X.ButtonPress: "press", X.ButtonRelease: "release", X.KeyPress: "key", X.KeyRelease: "keyup"}

    def __init__(self, display_name: str, title: str = "core-event-logger") -> None:
        self.display = Display(display_name)
        screen = self.display.screen()
        self.window = screen.root.create_window(
            100,
            100,
            500,
            400,
            0,
            screen.root_depth,
            X.InputOutput,
            X.CopyFromParent,
            background_pixel=screen.white_pixel,
            event_mask=X.ButtonPressMask
            | X.ButtonReleaseMask
            | X.KeyPressMask
            | X.KeyReleaseMask
            | X.StructureNotifyMask,
        )
        self.window.set_wm_name(title)
        self.window.map()
        self.display.sync()
        self._backlog: list[CoreEvent] = []
        mapped = False
        deadline = time.monotonic() + 10
        while not mapped:
            event = self._next(deadline)
            assert event is not None, "the core logger's window was not mapped within 10 s"
            mapped = event.type == X.MapNotify

    def _next(self, deadline: float) -> Any:
        """The next X event, read on this thread (python-xlib is not shared across threads here)."""
        while not self.display.pending_events():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            select.select([self.display.fileno()], [], [], remaining)
        return self.display.next_event()

    def center(self) -> tuple[int, int]:
        """The window's centre in root coordinates (wherever the window manager put it)."""
        root = self.display.screen().root
        geometry = self.window.get_geometry()
        origin = self.window.translate_coords(root, 0, 0)
        return -origin.x + geometry.width // 2, -origin.y + geometry.height // 2

    def take(self, kind: str, count: int, timeout: float = 5) -> list[CoreEvent]:
        """The next ``count`` events of ``kind``; the others read meanwhile stay for later takes."""
        deadline = time.monotonic() + timeout
        while sum(event.kind == kind for event in self._backlog) < count:
            event = self._next(deadline)
            assert event is not None, f"{count} {kind} events within {timeout} s: {self._backlog}"
            if event.type in self.KINDS:
                self._backlog.append(CoreEvent(self.KINDS[event.type], event.detail, int(event.state)))
        found = [event for event in self._backlog if event.kind == kind][:count]
        for event in found:
            self._backlog.remove(event)
        return found

    def close(self) -> None:
        self.window.destroy()
        self.display.close()
