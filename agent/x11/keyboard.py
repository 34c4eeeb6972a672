"""The keyboard map as seen by the agent, and binding of keysyms the layout lacks.

Typing must deliver every Unicode character whatever the layout. A character whose keysym sits
on level 1 or 2 (plain or Shift) of some keycode is typed there; any other keysym is bound to a
spare keycode first, all of a round's missing keysyms in one request. Bindings are kept, not
reverted after each character: clients reload their keymap lazily after MappingNotify, so a
keycode rebound too soon is read with the wrong keysym (why ``xdotool type`` drops é and ö).
A text needing more distinct keysyms than there are spare keycodes is typed in rounds that each
fit; bindings are then reused, least recently used first, after the earlier keys have been
delivered and a settle pause. The keycodes we bind are recorded on the root window, so an agent
restarted on the same server reuses them instead of running out of spare keycodes.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from Xlib import XK, X, Xatom
from Xlib.display import Display

from agent.desktop.keys import char_keysym
from agent.errors import Conflict

LOG = logging.getLogger(__name__)

NO_SYMBOL = 0
# Vendor keysyms (XF86 media and launch keys) whose keycodes we may borrow when no keycode is
# free: a desktop VM has no such physical keys, and a later request for one rebinds it.
VENDOR_KEYSYMS = range(0x1008FF00, 0x10090000)
SHIFT_L = XK.string_to_keysym("Shift_L")
NUM_LOCK = XK.string_to_keysym("Num_Lock")
KP_SPACE: int = XK.string_to_keysym("KP_Space")
KP_EQUAL: int = XK.string_to_keysym("KP_Equal")
# Root window property listing the keycodes we rebound. The bindings outlive the agent (they
# live in the server), so the next agent reads this to reuse those keycodes instead of taking
# them for the layout's own keys.
BOUND_KEYCODES_PROPERTY = "_COMPUTER_AGENT_BOUND_KEYCODES"


class NoKeycodeLeft(Conflict):
    """The keyboard map has no keycode we may bind (every one is the layout's own)."""

    code = "KEYMAP_FULL"


@dataclass(frozen=True, slots=True)
class KeyPlacement:
    keycode: int
    shift: bool  # the keysym is on level 2 (needs Shift)
    numlock: bool = False  # a keypad key's level 2 (KP_1 over KP_End): XKB's KEYPAD type needs NumLock


def is_keypad(keysym: int) -> bool:
    """KP_Space..KP_Equal, as Xlib's IsKeypadKey."""
    return KP_SPACE <= keysym <= KP_EQUAL


class KeyboardMap:
    """Index of keysym -> keycode for group 1 levels 1-2, plus our spare-keycode bindings.

    Lives on the X thread of its connection; ``invalidate()`` is called on MappingNotify.
    """

    def __init__(self) -> None:
        self._stale = True
        self._index: dict[int, KeyPlacement] = {}
        self._spare: list[int] = []
        self._borrowable: list[int] = []
        self._bound: OrderedDict[int, int] = OrderedDict()  # keysym -> keycode, LRU order
        self._modifier_keycodes: dict[int, int] = {}  # modifier mask -> first keycode
        self._modifier_bits: dict[int, int] = {}  # keycode -> modifier bit (Shift 0, Lock 1, Control 2...)
        self.min_keycode = 8
        self.max_keycode = 255

    def invalidate(self) -> None:
        self._stale = True

    def refresh(self, display: Display) -> None:
        """Re-read the keyboard mapping (after MappingNotify), keeping our bindings still in it."""
        if not self._stale:
            return
        self.min_keycode = display.display.info.min_keycode
        self.max_keycode = display.display.info.max_keycode
        count = self.max_keycode - self.min_keycode + 1
        mapping = display.get_keyboard_mapping(self.min_keycode, count)
        scan = _scan_mapping(mapping, self.min_keycode, _recorded_keycodes(display))
        bound = self._keep_bindings(scan)
        self._bound = bound
        self._index = scan.index
        in_use = set(bound.values())
        self._spare = [code for code in scan.spare if code not in in_use]
        self._borrowable = [code for code in scan.borrowable if code not in in_use]
        self._read_modifiers(display)
        self._stale = False

    def _keep_bindings(self, scan: _MappingScan) -> OrderedDict[int, int]:
        """Our bindings still in the map, least recently used first.

        Our earlier bindings live in the spare/borrowed keycodes: kept if still there. Those an
        earlier agent made on this server (recorded on the root window) are adopted as the least
        recently used, or the spare keycodes would run out over restarts; one that duplicates a
        key the layout has is free to bind again (it joins ``scan.spare``).
        """
        index = scan.index
        bound: OrderedDict[int, int] = OrderedDict()
        kept = {
            keysym: keycode
            for keysym, keycode in self._bound.items()
            if (placement := index.get(keysym)) is not None and placement.keycode == keycode
        }
        for keycode, keysym in scan.left_over.items():
            if keycode in kept.values():
                continue
            placement = index.get(keysym)
            if placement is not None and placement.keycode == keycode and keysym not in kept:
                bound[keysym] = keycode
            else:  # a duplicate of a key the layout has: free to bind
                scan.spare.append(keycode)
        bound.update(kept)
        return bound

    def _read_modifiers(self, display: Display) -> None:
        """Which keycode sets each modifier, and which modifier each keycode sets."""
        self._modifier_keycodes = {}
        self._modifier_bits = {}
        for bit, keycodes in enumerate(display.get_modifier_mapping()):
            for keycode in keycodes:
                if keycode:
                    self._modifier_keycodes.setdefault(1 << bit, keycode)
                    self._modifier_bits.setdefault(keycode, bit)

    @property
    def capacity(self) -> int:
        """How many keysyms can be bound at once."""
        return len(self._spare) + len(self._borrowable) + len(self._bound)

    def lookup(self, keysym: int) -> KeyPlacement | None:
        placement = self._index.get(keysym)
        if placement is not None and keysym in self._bound:
            self._bound.move_to_end(keysym)
        return placement

    def missing(self, keysyms: list[int]) -> list[int]:
        """The distinct keysyms of ``keysyms`` not typable with the current map, in order."""
        seen: dict[int, None] = {}
        for keysym in keysyms:
            if keysym not in self._index and keysym not in seen:
                seen[keysym] = None
        return list(seen)

    @property
    def free_keycodes(self) -> int:
        """Keycodes that can be bound without rebinding one of ours."""
        return len(self._spare) + len(self._borrowable)

    def needs_binding(self, keysym: int) -> bool:
        """Whether the keysym is typed on one of our bindings rather than on the layout's own keys."""
        return keysym in self._bound or keysym not in self._index

    def round_end(self, keysyms: list[int], start: int) -> int:
        """Where the round that types ``keysyms[start:]`` ends: as far as the distinct keysyms
        needing a binding fit the keycodes we may bind (at least one keysym per round)."""
        capacity = max(1, self.capacity)
        distinct: set[int] = set()
        end = start
        while end < len(keysyms):
            keysym = keysyms[end]
            if self.needs_binding(keysym) and keysym not in distinct:
                if len(distinct) >= capacity:
                    break
                distinct.add(keysym)
            end += 1
        return end

    def bind(self, display: Display, keysyms: list[int], protect: set[int]) -> None:
        """Bind each keysym to a free keycode (both levels), never evicting ``protect``.

        The caller guarantees ``len(keysyms)`` fits the capacity minus ``protect``.
        """
        if len(keysyms) > self.capacity - len(protect & self._bound.keys()):
            raise NoKeycodeLeft(f"{len(keysyms)} keysyms to bind but {self.capacity} bindable keycodes")
        changes: dict[int, int] = {}
        for keysym in keysyms:
            keycode = self._take_keycode(protect)
            changes[keycode] = keysym
            self._bound[keysym] = keycode
            self._index[keysym] = KeyPlacement(keycode, False)
        for keycode in sorted(changes):
            display.change_keyboard_mapping(keycode, [(changes[keycode], changes[keycode])])
        _record_keycodes(display, set(self._bound.values()))
        LOG.debug("bound %d keysyms to spare keycodes", len(changes))

    def _take_keycode(self, protect: set[int]) -> int:
        if self._spare:
            return self._spare.pop(0)
        if self._borrowable:
            keycode = self._borrowable.pop(0)
            for keysym, placement in list(self._index.items()):
                if placement.keycode == keycode:
                    del self._index[keysym]
            return keycode
        for keysym, keycode in self._bound.items():  # least recently used first
            if keysym not in protect:
                del self._bound[keysym]
                self._index.pop(keysym, None)
                return keycode
        raise NoKeycodeLeft("no keycode left to bind")  # the caller sized the round wrongly

    def modifier_bit(self, keycode: int) -> int | None:
        """The modifier a keycode sets, or None for an ordinary key."""
        return self._modifier_bits.get(keycode)

    def numlock_mask(self) -> int:
        """The modifier mask Num_Lock sets (Mod2 on every common layout), or 0 if none does."""
        placement = self._index.get(NUM_LOCK)
        bit = self.modifier_bit(placement.keycode) if placement is not None else None
        return 0 if bit is None else 1 << bit

    def shift_keycode(self) -> int:
        placement = self._index.get(SHIFT_L)
        if placement is not None:
            return placement.keycode
        keycode = self._modifier_keycodes.get(X.ShiftMask)
        if keycode is None:
            raise RuntimeError("the keyboard map has no Shift key")
        return keycode


@dataclass(slots=True)
class _MappingScan:
    """The server's keyboard mapping, keycode by keycode, as typing needs it."""

    index: dict[int, KeyPlacement] = field(default_factory=dict)  # keysym -> where to type it
    spare: list[int] = field(default_factory=list)  # keycodes with no keysym: free to bind
    borrowable: list[int] = field(default_factory=list)  # keycodes with vendor keysyms only
    left_over: dict[int, int] = field(default_factory=dict)  # keycode -> keysym an earlier agent bound


def _scan_mapping(mapping: list[list[int]], min_keycode: int, recorded: set[int]) -> _MappingScan:
    """Index group 1 levels 1-2 of every keycode, and sort out the keycodes we may bind."""
    scan = _MappingScan()
    for offset, syms in enumerate(mapping):
        keycode = min_keycode + offset
        level1 = syms[0] if len(syms) > 0 else NO_SYMBOL
        level2 = syms[1] if len(syms) > 1 else NO_SYMBOL
        if keycode in recorded and level1 and level1 == level2:  # still as we bound it
            scan.left_over[keycode] = level1
        if not any(syms):
            if keycode > 8:  # some toolkits ignore keycode 8
                scan.spare.append(keycode)
            continue
        if all(sym == NO_SYMBOL or sym in VENDOR_KEYSYMS for sym in syms):
            scan.borrowable.append(keycode)
        if is_keypad(level1) and is_keypad(level2):  # KP_End / KP_1: NumLock, not Shift, selects level 2
            placements = (
                (level1, KeyPlacement(keycode, False)),
                (level2, KeyPlacement(keycode, False, True)),
            )
        else:
            placements = (
                (level1, KeyPlacement(keycode, False)),
                (_shifted(level1, level2), KeyPlacement(keycode, True)),
            )
        for keysym, placement in placements:
            if keysym and keysym not in scan.index:
                scan.index[keysym] = placement
    return scan


def _shifted(level1: int, level2: int) -> int:
    """Level 2's keysym; a key with only a lower-case letter has its upper case there (as X does)."""
    if level2 == NO_SYMBOL and level1:
        lower, upper = _convert_case(level1)
        if upper != lower:
            return upper
    return level2


def _recorded_keycodes(display: Display) -> set[int]:
    """The keycodes this server's agents have bound (the root window property), if any."""
    atom = display.intern_atom(BOUND_KEYCODES_PROPERTY)
    reply = display.screen().root.get_full_property(atom, Xatom.CARDINAL)
    if reply is None or reply.format != 8:
        return set()
    return {int(code) for code in reply.value}


def _record_keycodes(display: Display, keycodes: set[int]) -> None:
    """Write down which keycodes hold our bindings, for the next agent on this server."""
    atom = display.intern_atom(BOUND_KEYCODES_PROPERTY)
    display.screen().root.change_property(atom, Xatom.CARDINAL, 8, sorted(keycodes))


def _convert_case(keysym: int) -> tuple[int, int]:
    """Lower and upper case of a Latin-1 or Unicode keysym (XConvertCase, simplified)."""
    if keysym < 0x100:
        char = chr(keysym)
    elif 0x01000100 <= keysym <= 0x0110FFFF:
        char = chr(keysym - 0x01000000)
    else:
        return keysym, keysym
    lower, upper = char.lower(), char.upper()
    if len(lower) != 1 or len(upper) != 1:
        return keysym, keysym
    return char_keysym(lower), char_keysym(upper)
