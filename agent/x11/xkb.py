"""The keyboard's lock and latch state (XKB), read and set so typing is exact under any of them.

Caps Lock, Shift Lock, Num Lock, a locked layout group, or a modifier latched by sticky keys
change which keysym a key press means: with Caps Lock on, "Hello" arrives as "hELLO". Typing
therefore reads this state first and, when anything is locked or latched, clears it for the
keys it sends and puts back exactly what was there afterwards. Modifiers held down (an earlier
``key-down`` of Shift) are a different part of the state (XKB's base modifiers) and are left
alone: holding one is the caller's choice.

python-xlib has no XKB binding, so the three requests used are declared here. They go on a
connection of their own: a client that enables XKB (UseExtension) stops receiving the core
MappingNotify for keyboard changes (setxkbmap), which the input connection relies on. This
connection is used from the input thread only, one round trip per request and step, so its
requests and the input connection's are ordered by waiting for each answer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from Xlib import error
from Xlib.display import Display
from Xlib.protocol import rq

LOG = logging.getLogger(__name__)

XKB_EXTENSION = "XKEYBOARD"
USE_CORE_KEYBOARD = 0x0100  # XkbUseCoreKbd
ALL_MODIFIERS = 0xFF
# Core state bits that lock and latch state can show up in: the eight modifiers and the group.
CORE_MODIFIER_BITS = 0xFF
CORE_GROUP_BITS = 0x6000
CONNECTION_ERRORS = (error.ConnectionClosedError, error.DisplayError, OSError)


class _UseExtension(rq.ReplyRequest):  # type: ignore[misc]  # python-xlib is untyped
    _request = rq.Struct(
        rq.Card8("opcode"),
        rq.Opcode(0),
        rq.RequestLength(),
        rq.Card16("wanted_major"),
        rq.Card16("wanted_minor"),
    )
    _reply = rq.Struct(
        rq.ReplyCode(),
        rq.Bool("supported"),
        rq.Card16("sequence_number"),
        rq.ReplyLength(),
        rq.Card16("server_major"),
        rq.Card16("server_minor"),
        rq.Pad(20),
    )


class _GetState(rq.ReplyRequest):  # type: ignore[misc]
    _request = rq.Struct(
        rq.Card8("opcode"),
        rq.Opcode(4),
        rq.RequestLength(),
        rq.Card16("device_spec"),
        rq.Pad(2),
    )
    _reply = rq.Struct(
        rq.ReplyCode(),
        rq.Card8("device_id"),
        rq.Card16("sequence_number"),
        rq.ReplyLength(),
        rq.Card8("mods"),
        rq.Card8("base_mods"),
        rq.Card8("latched_mods"),
        rq.Card8("locked_mods"),
        rq.Card8("group"),
        rq.Card8("locked_group"),
        rq.Int16("base_group"),
        rq.Int16("latched_group"),
        rq.Card8("compat_state"),
        rq.Card8("grab_mods"),
        rq.Card8("compat_grab_mods"),
        rq.Card8("lookup_mods"),
        rq.Card8("compat_lookup_mods"),
        rq.Pad(1),
        rq.Card16("pointer_buttons"),
        rq.Pad(6),
    )


class _LatchLockState(rq.Request):  # type: ignore[misc]
    _request = rq.Struct(
        rq.Card8("opcode"),
        rq.Opcode(5),
        rq.RequestLength(),
        rq.Card16("device_spec"),
        rq.Card8("affect_mod_locks"),
        rq.Card8("mod_locks"),
        rq.Bool("lock_group"),
        rq.Card8("group_lock"),
        rq.Card8("affect_mod_latches"),
        rq.Card8("mod_latches"),
        rq.Pad(1),
        rq.Bool("latch_group"),
        rq.Int16("group_latch"),
    )


@dataclass(frozen=True, slots=True)
class LockState:
    """What is locked and latched on the core keyboard (modifier masks and group numbers)."""

    locked_mods: int = 0
    latched_mods: int = 0
    locked_group: int = 0
    latched_group: int = 0


NEUTRAL = LockState()


class KeyboardLocks:
    """Reads and sets the lock and latch state, on its own connection, from the input thread."""

    def __init__(self, display_name: str) -> None:
        self.display_name = display_name
        self._display: Display | None = None
        self._opcode = 0
        self._unsupported = False

    @contextlib.contextmanager
    def cleared(self, input_display: Display, core_state: int, locked_mods: int = 0) -> Iterator[None]:
        """Clear every lock and latch (Caps, Shift and Num Lock, a locked group, sticky keys)
        for the keys ``input_display`` sends inside, then put back exactly what was there.

        ``core_state`` was read on a round trip the caller makes anyway: when it shows no
        modifier and the first group, XKB is not even asked. Modifiers the caller holds down
        (``key_down``) are XKB's base state, which is left as it is: holding one is its choice.
        ``locked_mods`` are locked instead of cleared: NumLock, for a keypad key's number level.
        """
        if not core_state & (CORE_MODIFIER_BITS | CORE_GROUP_BITS) and not locked_mods:
            yield
            return
        wanted = LockState(locked_mods=locked_mods)
        saved = self.read()
        if saved is None or saved == wanted:
            yield
            return
        self.write(wanted)
        try:
            yield
        finally:
            try:
                input_display.sync()  # every key reaches the server before the locks come back
            finally:
                self.write(saved)

    def read(self) -> LockState | None:
        """The current state, or None when the server has no XKB (nothing can be done then)."""
        display = self._connect()
        if display is None:
            return None
        try:
            reply = _GetState(display=display.display, opcode=self._opcode, device_spec=USE_CORE_KEYBOARD)
            state = LockState(
                locked_mods=reply.locked_mods,
                latched_mods=reply.latched_mods,
                locked_group=reply.locked_group,
                latched_group=reply.latched_group,
            )
            self._discard_events(display)
        except CONNECTION_ERRORS:
            self.close()
            raise
        return state

    def write(self, state: LockState) -> LockState | None:
        """Set every lock and latch to ``state``; returns the state read back (the round trip
        that makes the change happen before the next input request is sent)."""
        display = self._connect()
        if display is None:
            return None
        try:
            _LatchLockState(
                display=display.display,
                opcode=self._opcode,
                device_spec=USE_CORE_KEYBOARD,
                affect_mod_locks=ALL_MODIFIERS,
                mod_locks=state.locked_mods,
                lock_group=True,
                group_lock=state.locked_group,
                affect_mod_latches=ALL_MODIFIERS,
                mod_latches=state.latched_mods,
                latch_group=True,
                group_latch=state.latched_group,
            )
        except CONNECTION_ERRORS:
            self.close()
            raise
        return self.read()

    def close(self) -> None:
        if self._display is not None:
            try:
                self._display.close()
            except Exception:  # a dead socket has nothing left to release
                LOG.debug("closing the XKB connection failed", exc_info=True)
            self._display = None

    def _connect(self) -> Display | None:
        if self._display is not None:
            return self._display
        if self._unsupported:
            return None
        display = Display(self.display_name)
        display.set_error_handler(self._log_error)
        extension = display.query_extension(XKB_EXTENSION)
        if extension is None:
            LOG.warning("the X server has no XKB: typing cannot undo Caps Lock or Num Lock")
            self._unsupported = True
            display.close()
            return None
        reply = _UseExtension(
            display=display.display, opcode=extension.major_opcode, wanted_major=1, wanted_minor=0
        )
        if not reply.supported:
            LOG.warning("the X server refused XKB 1.0: typing cannot undo Caps Lock or Num Lock")
            self._unsupported = True
            display.close()
            return None
        self._opcode = extension.major_opcode
        self._display = display
        return display

    @staticmethod
    def _discard_events(display: Display) -> None:
        """Nothing is selected here, but core MappingNotify reaches every client: drop them."""
        while display.pending_events():
            display.next_event()

    @staticmethod
    def _log_error(err: error.XError, request: object = None) -> None:
        LOG.warning("XKB request failed: %s", err)
