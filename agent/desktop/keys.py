"""Key names: xdotool (X keysym) syntax plus the aliases language models emit, in one table.

``parse_chord("ctrl+shift+t")`` and ``parse_sequence("ctrl+a Delete")`` resolve names to keysyms
without touching an X server (python-xlib's keysym tables are plain data), so a bad name is a
400 before any key goes down.
"""

from __future__ import annotations

from functools import cache

from Xlib import XK

from agent.desktop.backend import Chord, Key
from agent.errors import InvalidArgument

for _group in (
    "xkb",
    "xf86",
    "latin1",
    "latin2",
    "latin3",
    "latin4",
    "greek",
    "cyrillic",
    "katakana",
    "arabic",
    "hebrew",
    "thai",
    "korean",
    "technical",
    "special",
    "publishing",
    "apl",
):
    XK.load_keysym_group(_group)

# Lower-case alias -> X keysym name. xdotool's own aliases first, then what models send.
ALIASES: dict[str, str] = {
    # xdotool
    "ctrl": "Control_L",
    "control": "Control_L",
    "alt": "Alt_L",
    "shift": "Shift_L",
    "super": "Super_L",
    "meta": "Meta_L",
    # modifiers as models and other tools spell them
    "ctl": "Control_L",
    "lctrl": "Control_L",
    "rctrl": "Control_R",
    "leftctrl": "Control_L",
    "rightctrl": "Control_R",
    "lshift": "Shift_L",
    "rshift": "Shift_R",
    "leftshift": "Shift_L",
    "rightshift": "Shift_R",
    "lalt": "Alt_L",
    "ralt": "Alt_R",
    "leftalt": "Alt_L",
    "rightalt": "Alt_R",
    "option": "Alt_L",
    "opt": "Alt_L",
    "altgr": "ISO_Level3_Shift",
    "cmd": "Super_L",
    "command": "Super_L",
    "win": "Super_L",
    "windows": "Super_L",
    "lwin": "Super_L",
    "rwin": "Super_R",
    "lsuper": "Super_L",
    "rsuper": "Super_R",
    "hyper": "Hyper_L",
    # editing and navigation
    "enter": "Return",
    "return": "Return",
    "ret": "Return",
    "newline": "Return",
    "esc": "Escape",
    "escape": "Escape",
    "backspace": "BackSpace",
    "bksp": "BackSpace",
    "back_space": "BackSpace",
    "del": "Delete",
    "delete": "Delete",
    "ins": "Insert",
    "insert": "Insert",
    "tab": "Tab",
    "space": "space",
    "spacebar": "space",
    "pageup": "Page_Up",
    "page_up": "Page_Up",
    "pgup": "Page_Up",
    "prior": "Prior",
    "pagedown": "Page_Down",
    "page_down": "Page_Down",
    "pgdn": "Page_Down",
    "next": "Next",
    "home": "Home",
    "end": "End",
    "up": "Up",
    "down": "Down",
    "left": "Left",
    "right": "Right",
    "arrowup": "Up",
    "arrowdown": "Down",
    "arrowleft": "Left",
    "arrowright": "Right",
    "uparrow": "Up",
    "downarrow": "Down",
    "leftarrow": "Left",
    "rightarrow": "Right",
    "capslock": "Caps_Lock",
    "caps_lock": "Caps_Lock",
    "numlock": "Num_Lock",
    "scrolllock": "Scroll_Lock",
    "printscreen": "Print",
    "print": "Print",
    "prtsc": "Print",
    "prtscr": "Print",
    "pause": "Pause",
    "break": "Break",
    "menu": "Menu",
    "apps": "Menu",
    "contextmenu": "Menu",
    # media
    "volumeup": "XF86AudioRaiseVolume",
    "volume_up": "XF86AudioRaiseVolume",
    "volumedown": "XF86AudioLowerVolume",
    "volume_down": "XF86AudioLowerVolume",
    "volumemute": "XF86AudioMute",
    "mute": "XF86AudioMute",
    "playpause": "XF86AudioPlay",
    "play": "XF86AudioPlay",
    "nexttrack": "XF86AudioNext",
    "prevtrack": "XF86AudioPrev",
    # punctuation spelled out
    "plus": "plus",
    "minus": "minus",
    "comma": "comma",
    "period": "period",
    "dot": "period",
    "slash": "slash",
    "backslash": "backslash",
    "semicolon": "semicolon",
    "quote": "apostrophe",
    "apostrophe": "apostrophe",
    "backquote": "grave",
    "backtick": "grave",
    "grave": "grave",
    "equal": "equal",
    "equals": "equal",
    "bracketleft": "bracketleft",
    "bracketright": "bracketright",
}


@cache
def _case_insensitive_names() -> dict[str, str | None]:
    """Lower-case keysym name -> name, or None where two names differ only by case."""
    table: dict[str, str | None] = {}
    for name in dir(XK):
        if not name.startswith("XK_"):
            continue
        keysym_name = name[3:].replace("XF86_", "XF86", 1)
        lowered = keysym_name.lower().replace("xf86_", "xf86", 1)
        if lowered in table and table[lowered] != keysym_name:
            table[lowered] = None
        else:
            table[lowered] = keysym_name
    return table


def char_keysym(char: str) -> int:
    """The keysym X uses for one Unicode character (Latin-1 directly, others as 0x01000000+cp)."""
    codepoint = ord(char)
    if 0x20 <= codepoint <= 0x7E or 0xA0 <= codepoint <= 0xFF:
        return codepoint
    return 0x01000000 + codepoint


def _keysym(name: str) -> int:
    """X's keysym for a name; python-xlib spells X's "XF86AudioMute" as "XF86_AudioMute"."""
    keysym: int = XK.string_to_keysym(name)
    if not keysym and name.startswith("XF86") and not name.startswith("XF86_"):
        keysym = XK.string_to_keysym("XF86_" + name[4:])
    return keysym


def resolve(name: str) -> Key:
    """Resolve one key name; raise InvalidArgument naming it when unknown."""
    if not name:
        raise InvalidArgument("empty key name")
    # Aliases first: "leftarrow" is also the keysym of the character U+2190, but a model
    # that sends it means the Left key.
    alias = ALIASES.get(name.lower())
    if alias is not None:
        return Key(name, _keysym(alias))
    keysym = _keysym(name)
    if keysym:
        return Key(name, keysym)
    folded = _case_insensitive_names().get(name.lower().replace("xf86_", "xf86", 1))
    if folded:
        return Key(name, _keysym(folded))
    if len(name) == 1 and name.isprintable():
        return Key(name, char_keysym(name))
    if name.lower().startswith("0x") and len(name) > 2:  # a raw keysym, as xdotool accepts
        try:
            return Key(name, int(name, 16))
        except ValueError:
            pass
    raise InvalidArgument(f"unknown key name {name!r}", details={"key": name})


def split_chord(spec: str) -> list[str]:
    """Split "ctrl+shift+t" into names; "ctrl++" and "+" mean the plus key."""
    if spec == "+":
        return ["plus"]
    if spec.endswith("++"):
        return [*spec[:-2].split("+"), "plus"]
    return spec.split("+")


def parse_chord(spec: str) -> Chord:
    spec = spec.strip()
    if not spec:
        raise InvalidArgument("empty key specification")
    names = split_chord(spec)
    unknown = []
    keys = []
    for name in names:
        try:
            keys.append(resolve(name.strip()))
        except InvalidArgument:
            unknown.append(name)
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise InvalidArgument(
            f"unknown key name{'s' if len(unknown) > 1 else ''} {listed} in {spec!r}",
            details={"unknown_keys": unknown},
        )
    return tuple(keys)


def parse_sequence(spec: str) -> list[Chord]:
    """xdotool's ``key`` arguments: chords separated by white space ("ctrl+a Delete").

    A spec that is only white space (" ") is the space key.
    """
    if spec and not spec.strip():
        return [(Key(spec, XK.string_to_keysym("space")),)]
    return [parse_chord(part) for part in spec.split()]


def parse_keys(names: list[str]) -> Chord:
    """A hotkey list (["ctrl", "shift", "t"]): one chord, pressed in order."""
    if not names:
        raise InvalidArgument("keys must name at least one key")
    unknown = []
    keys = []
    for name in names:
        try:
            keys.append(resolve(name.strip() or name))
        except InvalidArgument:
            unknown.append(name)
    if unknown:
        raise InvalidArgument(
            f"unknown key name(s) {', '.join(repr(n) for n in unknown)}", details={"unknown_keys": unknown}
        )
    return tuple(keys)


# Characters typed as named keys rather than as their own keysym.
TYPED_CONTROLS = {
    "\n": XK.string_to_keysym("Return"),
    "\r": XK.string_to_keysym("Return"),
    "\t": XK.string_to_keysym("Tab"),
    "\b": XK.string_to_keysym("BackSpace"),
    "\x1b": XK.string_to_keysym("Escape"),
    "\x7f": XK.string_to_keysym("Delete"),
}


# Keys whose press changes what later keys mean (a lock, a latch, a group switch): a key
# sequence that contains one is sent without the lock handling typing gets.
LOCK_KEYSYMS = frozenset(
    XK.string_to_keysym(name)
    for name in (
        "Caps_Lock",
        "Shift_Lock",
        "Num_Lock",
        "Scroll_Lock",
        "ISO_Lock",
        "ISO_Level2_Latch",
        "ISO_Level3_Latch",
        "ISO_Level3_Lock",
        "ISO_Level5_Latch",
        "ISO_Level5_Lock",
        "ISO_Group_Latch",
        "ISO_Group_Lock",
        "ISO_Next_Group",
        "ISO_Next_Group_Lock",
        "ISO_Prev_Group",
        "ISO_Prev_Group_Lock",
        "ISO_First_Group",
        "ISO_First_Group_Lock",
        "ISO_Last_Group",
        "ISO_Last_Group_Lock",
        "Mode_switch",
    )
) - {0}


def is_lock_key(keysym: int) -> bool:
    return keysym in LOCK_KEYSYMS


def text_keysyms(text: str) -> list[int]:
    """One keysym per character to type; "\\r\\n" is one Return. Other control characters are refused."""
    keysyms: list[int] = []
    previous = ""
    bad: list[str] = []
    for char in text:
        if char == "\n" and previous == "\r":
            previous = char
            continue
        previous = char
        control = TYPED_CONTROLS.get(char)
        if control is not None:
            keysyms.append(control)
        elif not char.isprintable() and char not in " \u00a0" and ord(char) < 0x20:
            bad.append(f"U+{ord(char):04X}")
        else:
            keysyms.append(char_keysym(char))
    if bad:
        raise InvalidArgument(
            f"text contains control characters that cannot be typed: {', '.join(sorted(set(bad)))}",
            details={"characters": sorted(set(bad))},
        )
    return keysyms
