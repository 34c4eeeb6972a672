"""The X11 desktop backend: XTest input on one connection, capture on another.

Held keys and buttons are tracked so that a failed batch or a shutdown can release them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import math
import time
from typing import TYPE_CHECKING

from Xlib import X
from Xlib.display import Display
from Xlib.ext import xtest
from Xlib.protocol import rq

if TYPE_CHECKING:
    from agent.x11.capture import ScreenCapture

from agent.desktop.backend import Button, CaptureOptions, Chord, Point, Region, Size
from agent.desktop.keys import is_lock_key, text_keysyms
from agent.errors import DisplayUnavailable
from agent.models.image import ImageResult
from agent.x11.connection import XConnection
from agent.x11.keyboard import KeyboardMap, NoKeycodeLeft
from agent.x11.xkb import KeyboardLocks

LOG = logging.getLogger(__name__)

BUTTONS = {Button.LEFT: 1, Button.MIDDLE: 2, Button.RIGHT: 3, Button.BACK: 8, Button.FORWARD: 9}
SCROLL_UP, SCROLL_DOWN, SCROLL_LEFT, SCROLL_RIGHT = 4, 5, 6, 7
TYPE_CHUNK = 256  # characters sent between two syncs
# Before keycodes that earlier keys of the same text used are rebound, clients must have looked
# those keys up; a terminal drawing CJK glyphs needed ~0.3 s for 45 keys here.
REBIND_SETTLE_BASE_S = 0.1
REBIND_SETTLE_PER_KEY_S = 0.01
DRAG_STEP_PX = 15
DRAG_PAUSE_S = 0.02
# The core state bit of each button that has one (buttons 6-9 have none: they cannot be watched).
BUTTON_MASKS = {1: X.Button1Mask, 2: X.Button2Mask, 3: X.Button3Mask, 4: X.Button4Mask, 5: X.Button5Mask}
RELEASE_WAIT_S = 1.0  # how long a window manager may keep the pointer frozen on our press
RELEASE_POLL_S = 0.002


class X11Desktop:
    def __init__(self, display_name: str, *, capture_idle_s: float = 30.0) -> None:
        self.display_name = display_name
        self._capture_idle_s = capture_idle_s
        self.connection = XConnection(display_name, name="x11-input")
        self._keyboard = KeyboardMap()
        self._locks = KeyboardLocks(display_name)
        self._capture: ScreenCapture | None = None  # Pillow, mss: loaded off the start-up path
        self._size: Size | None = None
        self._held_keys: list[int] = []
        self._held_buttons: list[int] = []
        self._rebind_safe_at = 0.0  # time.monotonic() after which keys typed so far have been read
        self.connection.on_connect(self._on_connect)
        self.connection.on_event(self._on_event)

    # -- connection hooks (X thread) ----------------------------------------------
    def _on_connect(self, display: Display) -> None:
        if not display.has_extension("XTEST"):
            raise DisplayUnavailable(f"the X server on {self.display_name} lacks the XTEST extension")
        root = display.screen().root
        root.change_attributes(event_mask=X.StructureNotifyMask)
        geometry = root.get_geometry()
        self._size = Size(geometry.width, geometry.height)
        self._keyboard.invalidate()
        self._locks.close()  # a new server (or generation): its own XKB connection
        self._held_keys.clear()
        self._held_buttons.clear()

    def _on_event(self, display: Display, event: rq.Event) -> None:
        if event.type == X.MappingNotify:
            self._keyboard.invalidate()
        elif event.type == X.ConfigureNotify and event.window == display.screen().root:
            self._size = Size(event.width, event.height)

    # -- queries ------------------------------------------------------------------
    async def screen_size(self) -> Size:
        """The root's size, kept from its ConfigureNotify events; read on the X thread only when
        the server has written something unread, so a resize is seen as soon as it is made
        (a screenshot right after it would grab, and cache, the old area)."""
        if self._size is None or self.connection.unread():
            await self.connection.run(lambda display: None)
        assert self._size is not None
        return self._size

    async def cursor_position(self) -> Point:
        def query(display: Display) -> Point:
            pointer = display.screen().root.query_pointer()
            return Point(pointer.root_x, pointer.root_y)

        return await self.connection.run(query)

    async def check(self) -> str:
        await self.connection.run(lambda display: display.get_input_focus())
        size = await self.screen_size()
        return f"{self.display_name} {size.width}x{size.height}"

    async def check_capture(self) -> str:
        # Until the first capture has loaded it there is no capture connection that could be
        # broken; the first poll after that grabs for real (an idle agent loads no encoders).
        if self._capture is None:
            return "starts on first use"
        return await self._capture.check()

    # -- pointer ------------------------------------------------------------------
    async def move(self, x: int, y: int) -> None:
        def op(display: Display) -> None:
            xtest.fake_input(display, X.MotionNotify, x=x, y=y)

        await self.connection.run(op)

    async def click(self, x: int, y: int, button: Button, count: int, modifiers: Chord) -> None:
        code = BUTTONS[button]

        def op(display: Display) -> None:
            modifier_codes = self._press_chord(display, modifiers)
            xtest.fake_input(display, X.MotionNotify, x=x, y=y)
            for _ in range(count):
                xtest.fake_input(display, X.ButtonPress, code)
                xtest.fake_input(display, X.ButtonRelease, code)
            self._await_released(display, [code])
            self._release(display, modifier_codes)

        await self.connection.run(op)

    async def button(self, x: int, y: int, button: Button, down: bool) -> None:
        code = BUTTONS[button]

        def op(display: Display) -> None:
            xtest.fake_input(display, X.MotionNotify, x=x, y=y)
            xtest.fake_input(display, X.ButtonPress if down else X.ButtonRelease, code)
            if down and code not in self._held_buttons:
                self._held_buttons.append(code)
            elif not down:
                if code in self._held_buttons:
                    self._held_buttons.remove(code)
                self._await_released(display, [code])

        await self.connection.run(op)

    async def drag(self, start: Point, end: Point, button: Button) -> None:
        """Press, move through intermediate points (toolkits need motion to start a drag), release."""
        distance = math.hypot(end.x - start.x, end.y - start.y)
        steps = max(5, min(60, int(distance / DRAG_STEP_PX)))
        await self.button(start.x, start.y, button, down=True)
        try:
            await asyncio.sleep(DRAG_PAUSE_S)
            points = [
                (
                    round(start.x + (end.x - start.x) * i / steps),
                    round(start.y + (end.y - start.y) * i / steps),
                )
                for i in range(1, steps + 1)
            ]
            for index in range(0, len(points), 4):
                batch = points[index : index + 4]

                def op(display: Display, batch: list[tuple[int, int]] = batch) -> None:
                    for px, py in batch:
                        xtest.fake_input(display, X.MotionNotify, x=px, y=py)

                await self.connection.run(op)
                await asyncio.sleep(0.004)
            await asyncio.sleep(DRAG_PAUSE_S)
        finally:
            await self.button(end.x, end.y, button, down=False)

    async def scroll(self, x: int, y: int, dx: int, dy: int) -> None:
        notches = [
            (SCROLL_DOWN if dy > 0 else SCROLL_UP, abs(dy)),
            (SCROLL_RIGHT if dx > 0 else SCROLL_LEFT, abs(dx)),
        ]

        def op(display: Display) -> None:
            xtest.fake_input(display, X.MotionNotify, x=x, y=y)
            for code, times in notches:
                for _ in range(times):
                    xtest.fake_input(display, X.ButtonPress, code)
                    xtest.fake_input(display, X.ButtonRelease, code)
            self._await_released(display, [code for code, times in notches if times])

        await self.connection.run(op)

    def _await_released(self, display: Display, codes: list[int]) -> None:
        """Return once the server has processed our release of ``codes``, not just received it.

        A window manager that grabs the buttons of client windows synchronously (xfwm4 does, to
        focus and raise on click) freezes the pointer at our press: the press, and every pointer
        event after it, wait until the WM replays them, while key events go on. A modifier
        released, or a key typed, right after the click would then overtake it, and the replayed
        press would be delivered with the state of that later moment (ctrl+click arriving as a
        plain click). While the pointer is frozen the server still counts the button as down, so
        the core state of a pointer query shows when the release has been processed.
        Buttons 6-9 have no core state bit; they are not waited for.
        """
        mask = 0
        for code in codes:
            if code not in self._held_buttons:
                mask |= BUTTON_MASKS.get(code, 0)
        if not mask:
            return
        root = display.screen().root
        deadline = time.monotonic() + RELEASE_WAIT_S
        while int(root.query_pointer().mask) & mask:
            if time.monotonic() >= deadline:
                LOG.warning("the pointer stayed frozen for %.1f s after a button release", RELEASE_WAIT_S)
                return
            time.sleep(RELEASE_POLL_S)

    # -- keyboard -----------------------------------------------------------------
    async def type_text(self, text: str, delay_ms: int) -> None:
        keysyms = text_keysyms(text)
        step = TYPE_CHUNK if delay_ms <= 0 else 1
        for start in range(0, len(keysyms), step):
            if start and delay_ms > 0:
                await asyncio.sleep(delay_ms / 1000)
            await self.connection.run(functools.partial(self._type, keysyms=keysyms[start : start + step]))

    def _type(self, display: Display, keysyms: list[int]) -> None:
        """Type in rounds: each binds what it lacks to spare keycodes, then presses its keys
        with Shift exactly when needed. One round when the text's distinct missing keysyms fit
        the spare keycodes; otherwise each round uses as many as fit and the next rebinds them."""
        keyboard = self._keyboard
        core_state = self._read_keymap(display)
        if keyboard.capacity == 0 and keyboard.missing(keysyms):
            raise NoKeycodeLeft("the keyboard map has no spare keycode to type characters the layout lacks")
        with self._locks.cleared(display, core_state):
            start = 0
            while start < len(keysyms):
                end = keyboard.round_end(keysyms, start)
                run = keysyms[start:end]
                to_bind = keyboard.missing(run)
                if to_bind:
                    if len(to_bind) > keyboard.free_keycodes:
                        self._let_clients_read_earlier_keys()
                    protect = {keysym for keysym in run if keyboard.needs_binding(keysym)}
                    keyboard.bind(display, to_bind, protect=protect)
                self._send_keysyms(display, run)
                display.sync()
                self._rebind_safe_at = (
                    time.monotonic() + REBIND_SETTLE_BASE_S + REBIND_SETTLE_PER_KEY_S * len(run)
                )
                start = end
                if start < len(keysyms):
                    self._read_keymap(display)

    def _read_keymap(self, display: Display) -> int:
        """Bring the keyboard map up to date before choosing keycodes; return the core state.

        The round trip makes the server hand us every MappingNotify caused before this call:
        ours (after a rebinding) and anyone else's (setxkbmap, a layout switch). Both are handled
        alike, by reading the map again, so a change by someone else between two requests or two
        rounds is followed rather than typed over, and our own is never taken for a conflict.
        The round trip is a pointer query, whose answer carries the keyboard's core state
        (modifiers and group) for ``KeyboardLocks.cleared``: knowing no lock is on costs nothing more.
        """
        core_state = int(display.screen().root.query_pointer().mask)
        self.connection.drain_events(display)
        self._keyboard.refresh(display)
        return core_state

    def _let_clients_read_earlier_keys(self) -> None:
        """Wait before rebinding keycodes that keys typed moments ago were sent on.

        Clients translate a key when they read it, with the map they hold then; a keycode rebound
        before they have read its earlier press is read with the new keysym.
        """
        delay = self._rebind_safe_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _send_keysyms(self, display: Display, keysyms: list[int]) -> None:
        keyboard = self._keyboard
        shift_code = keyboard.shift_keycode()
        shift_down = False
        caller_holds_shift = shift_code in self._held_keys  # then it stays held, whatever we type
        for keysym in keysyms:
            placement = keyboard.lookup(keysym)
            if placement is None:  # the round was bound just before, on this thread
                raise RuntimeError(f"keysym {keysym:#x} has no keycode after binding")
            if placement.shift != shift_down and not caller_holds_shift:
                xtest.fake_input(display, X.KeyPress if placement.shift else X.KeyRelease, shift_code)
                shift_down = placement.shift
            xtest.fake_input(display, X.KeyPress, placement.keycode)
            xtest.fake_input(display, X.KeyRelease, placement.keycode)
        if shift_down:
            xtest.fake_input(display, X.KeyRelease, shift_code)

    def _keycodes(self, display: Display, chord: Chord) -> list[int]:
        """Keycodes to press for a chord, with Shift inserted before a key that needs it (as xdotool)."""
        keyboard = self._keyboard
        self._read_keymap(display)
        missing = keyboard.missing([key.keysym for key in chord])
        if missing:
            if len(missing) > keyboard.free_keycodes:
                self._let_clients_read_earlier_keys()
            keyboard.bind(display, missing, protect={key.keysym for key in chord})
        codes: list[int] = []
        shift_code = keyboard.shift_keycode()
        for key in chord:
            placement = keyboard.lookup(key.keysym)
            assert placement is not None
            if placement.shift and shift_code not in codes:
                codes.append(shift_code)
            if placement.keycode not in codes:
                codes.append(placement.keycode)
        return codes

    def _press_chord(self, display: Display, chord: Chord) -> list[int]:
        codes = self._keycodes(display, chord) if chord else []
        for code in codes:
            xtest.fake_input(display, X.KeyPress, code)
        return codes

    def _release(self, display: Display, codes: list[int]) -> None:
        for code in reversed(codes):
            xtest.fake_input(display, X.KeyRelease, code)

    def _release_like_xdotool(self, display: Display, codes: list[int]) -> None:
        """Modifiers first, in modifier-bit order (Shift, Control, Mod1...), then the other keys."""
        keyboard = self._keyboard
        modifiers = sorted(
            (code for code in codes if keyboard.modifier_bit(code) is not None),
            key=lambda code: keyboard.modifier_bit(code) or 0,
        )
        others = [code for code in codes if keyboard.modifier_bit(code) is None]
        for code in modifiers + others:
            xtest.fake_input(display, X.KeyRelease, code)

    async def press_chords(self, chords: list[Chord], *, reverse_release: bool = False) -> None:
        """Press and release each chord. Like typed text, a named key means that keysym
        whatever lock is on; a sequence that presses a lock key itself is sent as it is."""
        presses_a_lock = any(is_lock_key(key.keysym) for chord in chords for key in chord)

        def op(display: Display) -> None:
            if presses_a_lock:
                core_state, locked_mods = 0, 0
            else:
                core_state = self._read_keymap(display)
                locked_mods = self._numlock_for(chords)
            with self._locks.cleared(display, core_state, locked_mods):
                for chord in chords:
                    codes = self._press_chord(display, chord)
                    if reverse_release:
                        self._release(display, codes)
                    else:
                        self._release_like_xdotool(display, codes)

        await self.connection.run(op)

    def _numlock_for(self, chords: list[Chord]) -> int:
        """NumLock's mask when a chord names a keypad key's number level (KP_1), else 0."""
        for chord in chords:
            for key in chord:
                placement = self._keyboard.lookup(key.keysym)
                if placement is not None and placement.numlock:
                    return self._keyboard.numlock_mask()
        return 0

    async def key_down(self, chord: Chord) -> None:
        def op(display: Display) -> None:
            for code in self._press_chord(display, chord):
                if code not in self._held_keys:
                    self._held_keys.append(code)

        await self.connection.run(op)

    async def key_up(self, chord: Chord) -> None:
        def op(display: Display) -> None:
            codes = self._keycodes(display, chord)
            self._release(display, codes)
            for code in codes:
                if code in self._held_keys:
                    self._held_keys.remove(code)

        await self.connection.run(op)

    async def release_all(self) -> None:
        if not (self._held_keys or self._held_buttons) or not self.connection.connected:
            return

        def op(display: Display) -> None:
            for code in reversed(self._held_buttons):
                xtest.fake_input(display, X.ButtonRelease, code)
            self._release(display, self._held_keys)
            self._held_keys.clear()
            self._held_buttons.clear()

        try:
            await self.connection.run(op)
        except DisplayUnavailable:
            LOG.warning("could not release held keys: the display is gone")

    # -- screen -------------------------------------------------------------------
    async def screen_capture(self) -> ScreenCapture:
        """The capture service, imported on a worker thread on first use (the encoders stay off
        the start-up and idle paths)."""
        if self._capture is None:
            capture_module = await asyncio.to_thread(importlib.import_module, "agent.x11.capture")
            if self._capture is None:
                self._capture = capture_module.ScreenCapture(self.display_name, idle_s=self._capture_idle_s)
        assert self._capture is not None
        return self._capture

    async def capture(self, region: Region | None, options: CaptureOptions) -> ImageResult:
        size = await self.screen_size()
        if region is None:
            region = Region(0, 0, size.width, size.height)
        return await (await self.screen_capture()).capture(region, size.width, size.height, options)

    async def close(self) -> None:
        await self.release_all()
        if self.connection.connected:
            with contextlib.suppress(DisplayUnavailable):
                await self.connection.run(lambda display: self._locks.close())
        if self._capture is not None:
            await self._capture.close()
        await self.connection.close()
