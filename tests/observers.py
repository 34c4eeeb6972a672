"""Independent observers for the x11 tier: a GTK event logger, xterm writing to a file, XRecord."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from agent.session.devdesktop import DevDesktop
from tests.waiting import wait_until

APPS = Path(__file__).resolve().parent / "apps"
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-gi


def observe_root(desktop: DevDesktop, prop: str) -> str:
    """A property of the root window, as xprop prints it."""
    argv = ["xprop", "-root", prop]
    return subprocess.run(argv, env=desktop.env, capture_output=True, text=True, check=False).stdout.strip()


class EventLogger:
    """The GTK app tests/apps/event_logger.py, its JSON lines read on a thread."""

    def __init__(self, desktop: DevDesktop, title: str = "event-logger") -> None:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(APPS / "event_logger.py"), title],
            env=desktop.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self._syncs = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self.next("ready", timeout=15)
        self._wait_for_focus(desktop)

    def _wait_for_focus(self, desktop: DevDesktop) -> None:
        """Until the window manager has made the app's window the active one. Before that a
        click-to-focus WM grabs the button on it and replays the press later than the agent's
        round trip: a click would arrive after the sync that should follow it."""
        root = observe_root(desktop, "_NET_SUPPORTING_WM_CHECK")
        if "window id" not in root:
            return  # no window manager: nothing grabs
        window = hex(int(self.ready["window"]))

        def active() -> bool:  # "_NET_ACTIVE_WINDOW(WINDOW): window id # 0x600003, 0x0"
            return f"# {window}," in observe_root(desktop, "_NET_ACTIVE_WINDOW") + ","

        try:
            wait_until(active, timeout=5, what=f"the event logger's window {window} to be active")
        except AssertionError:
            # A loaded machine has seen the WM leave a new window unfocused: ask it as a pager would.
            subprocess.run(["xdotool", "windowactivate", window], env=desktop.env, check=False)
            wait_until(active, timeout=10, what=f"the event logger's window {window} to be active")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(json.loads(line))

    def next(self, event: str | None = None, timeout: float = 5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {event or 'event'} from the GTK app within {timeout}s")
            try:
                entry = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if event is None or entry["event"] == event:
                return entry

    def collect(self, timeout: float = 10) -> list[dict[str, Any]]:
        """Every event the app has received for what happened on the X server until now.

        No settle time: the app answers a numbered sync once it has handled every X event the
        server sent it before (see tests/apps/event_logger.py).
        """
        assert self.process.stdin is not None
        self._syncs += 1
        self.process.stdin.write(f"sync {self._syncs}\n")
        self.process.stdin.flush()
        events: list[dict[str, Any]] = []
        while True:
            entry = self.next(timeout=timeout)
            if entry["event"] == "sync":
                if entry["n"] == self._syncs:
                    return events
                continue
            events.append(entry)

    def drain(self) -> None:
        self.collect()

    @property
    def area_center(self) -> tuple[int, int]:
        return (
            self.ready["area_x"] + self.ready["area_width"] // 2,
            self.ready["area_y"] + self.ready["area_height"] // 2,
        )

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=5)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


class DeviceEventRecorder:
    """Records core device events of one range the X server generates (XRecord), from any
    client, before any app compresses or filters them; ``on_event`` keeps what a test needs."""

    def __init__(self, display_name: str, first: int, last: int) -> None:
        from Xlib.display import Display
        from Xlib.ext import record

        self._record = record
        self._control = Display(display_name)
        self._data = Display(display_name)
        self._context = self._data.record_create_context(
            0,
            [record.AllClients],
            [
                {
                    "core_requests": (0, 0),
                    "core_replies": (0, 0),
                    "ext_requests": (0, 0, 0, 0),
                    "ext_replies": (0, 0, 0, 0),
                    "delivered_events": (0, 0),
                    "device_events": (first, last),
                    "errors": (0, 0),
                    "client_started": False,
                    "client_died": False,
                }
            ],
        )
        self._recording = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._recording.wait(timeout=10):
            raise TimeoutError("XRecord did not start")

    def on_event(self, event: Any) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        from Xlib.protocol import rq

        def callback(reply: Any) -> None:
            if reply.category == self._record.StartOfData:
                self._recording.set()
            if reply.category != self._record.FromServer or reply.client_swapped:
                return
            data = reply.data
            while data:
                event, data = rq.EventField(None).parse_binary_value(data, self._data.display, None, None)
                self.on_event(event)

        self._data.record_enable_context(self._context, callback)

    def close(self) -> None:
        self._control.record_disable_context(self._context)
        self._control.flush()
        self._thread.join(timeout=5)
        self._data.record_free_context(self._context)
        self._control.close()
        self._data.close()


class KeyRecorder(DeviceEventRecorder):
    """Records the core keyboard events the X server generates, from any client."""

    def __init__(self, display_name: str) -> None:
        from Xlib import X

        self.events: list[tuple[str, int]] = []
        super().__init__(display_name, X.KeyPress, X.KeyRelease)

    def on_event(self, event: Any) -> None:
        from Xlib import X

        self.events.append(("press" if event.type == X.KeyPress else "release", event.detail))

    def take_sequence(self, timeout: float = 5) -> list[tuple[str, int]]:
        """The events of one complete key sequence: waits until at least one key was pressed
        and every pressed key released again (both xdotool and the agent release all they press
        before they return), then takes them. No settle time."""

        def complete() -> bool:
            held: set[int] = set()
            for kind, keycode in list(self.events):
                (held.add if kind == "press" else held.discard)(keycode)
            return bool(self.events) and not held

        wait_until(complete, timeout=timeout, what="a complete key sequence (every press released)")
        return self.take()

    def take(self) -> list[tuple[str, int]]:
        """Whatever has been recorded so far."""
        taken, self.events = self.events, []
        return taken
