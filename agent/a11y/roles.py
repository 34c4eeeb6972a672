"""AT-SPI role and state names, indexed by their numbers on the wire.

Generated once from libatspi 2.46 (``Atspi.role_get_name`` and ``Atspi.StateType``) so the
agent speaks the names screen readers and pyatspi use ("push button", "menu item") without
importing GObject at run time. States keep libatspi's nicks ("multi-line", "manages-descendants");
queries accept spaces or underscores in their place.
"""

from __future__ import annotations

import functools

ROLE_NAMES: tuple[str, ...] = (
    "invalid",
    "accelerator label",
    "alert",
    "animation",
    "arrow",
    "calendar",
    "canvas",
    "check box",
    "check menu item",
    "color chooser",
    "column header",
    "combo box",
    "date editor",
    "desktop icon",
    "desktop frame",
    "dial",
    "dialog",
    "directory pane",
    "drawing area",
    "file chooser",
    "filler",
    "focus traversable",
    "font chooser",
    "frame",
    "glass pane",
    "html container",
    "icon",
    "image",
    "internal frame",
    "label",
    "layered pane",
    "list",
    "list item",
    "menu",
    "menu bar",
    "menu item",
    "option pane",
    "page tab",
    "page tab list",
    "panel",
    "password text",
    "popup menu",
    "progress bar",
    "push button",
    "radio button",
    "radio menu item",
    "root pane",
    "row header",
    "scroll bar",
    "scroll pane",
    "separator",
    "slider",
    "spin button",
    "split pane",
    "status bar",
    "table",
    "table cell",
    "table column header",
    "table row header",
    "tearoff menu item",
    "terminal",
    "text",
    "toggle button",
    "tool bar",
    "tool tip",
    "tree",
    "tree table",
    "unknown",
    "viewport",
    "window",
    "extended",
    "header",
    "footer",
    "paragraph",
    "ruler",
    "application",
    "autocomplete",
    "editbar",
    "embedded",
    "entry",
    "chart",
    "caption",
    "document frame",
    "heading",
    "page",
    "section",
    "redundant object",
    "form",
    "link",
    "input method window",
    "table row",
    "tree item",
    "document spreadsheet",
    "document presentation",
    "document text",
    "document web",
    "document email",
    "comment",
    "list box",
    "grouping",
    "image map",
    "notification",
    "info bar",
    "level bar",
    "title bar",
    "block quote",
    "audio",
    "video",
    "definition",
    "article",
    "landmark",
    "log",
    "marquee",
    "math",
    "rating",
    "timer",
    "static",
    "math fraction",
    "math root",
    "subscript",
    "superscript",
    "description list",
    "description term",
    "description value",
    "footnote",
    "content deletion",
    "content insertion",
    "mark",
    "suggestion",
    "push button menu",
)

STATE_NAMES: tuple[str, ...] = (
    "invalid",
    "active",
    "armed",
    "busy",
    "checked",
    "collapsed",
    "defunct",
    "editable",
    "enabled",
    "expandable",
    "expanded",
    "focusable",
    "focused",
    "has-tooltip",
    "horizontal",
    "iconified",
    "modal",
    "multi-line",
    "multiselectable",
    "opaque",
    "pressed",
    "resizable",
    "selectable",
    "selected",
    "sensitive",
    "showing",
    "single-line",
    "stale",
    "transient",
    "vertical",
    "visible",
    "manages-descendants",
    "indeterminate",
    "required",
    "truncated",
    "animated",
    "invalid-entry",
    "supports-autocompletion",
    "selectable-text",
    "is-default",
    "visited",
    "checkable",
    "has-popup",
    "read-only",
)

ROLE_NUMBERS: dict[str, int] = {name: number for number, name in enumerate(ROLE_NAMES)}
STATE_NUMBERS: dict[str, int] = {name: number for number, name in enumerate(STATE_NAMES)}

STATE_SHOWING = STATE_NUMBERS["showing"]
STATE_VISIBLE = STATE_NUMBERS["visible"]
_SHOWING_AND_VISIBLE = (1 << STATE_SHOWING) | (1 << STATE_VISIBLE)
STATE_DEFUNCT = STATE_NUMBERS["defunct"]
STATE_MANAGES_DESCENDANTS = STATE_NUMBERS["manages-descendants"]
ROLE_APPLICATION = ROLE_NUMBERS["application"]
ROLE_DESKTOP_FRAME = ROLE_NUMBERS["desktop frame"]


def role_name(number: int) -> str:
    if 0 <= number < len(ROLE_NAMES):
        return ROLE_NAMES[number]
    return "unknown"


def state_names(words: tuple[int, ...] | list[int]) -> list[str]:
    """Decode AT-SPI's state bit set (two 32-bit words) into names, in enum order."""
    return list(_state_names(tuple(words)))


@functools.lru_cache(maxsize=4096)  # a tree has few distinct state sets and many nodes
def _state_names(words: tuple[int, ...]) -> tuple[str, ...]:
    names = []
    for index, word in enumerate(words):
        base, rest = index * 32, word
        while rest:
            low = rest & -rest
            bit = base + low.bit_length() - 1
            if bit < len(STATE_NAMES):
                names.append(STATE_NAMES[bit])
            rest ^= low
    return tuple(names)


def is_showing(words: tuple[int, ...] | list[int]) -> bool:
    """SHOWING and VISIBLE both set (both bits live in the first word; this runs per node)."""
    return bool(words) and words[0] & _SHOWING_AND_VISIBLE == _SHOWING_AND_VISIBLE


def has_state(words: tuple[int, ...] | list[int], number: int) -> bool:
    word = number // 32
    return word < len(words) and bool(words[word] >> (number % 32) & 1)


def parse_state_names(names: list[str]) -> list[int]:
    """Map names (dashes, spaces or underscores) to numbers; unknown names raise KeyError."""
    return [STATE_NUMBERS[name.strip().lower().replace(" ", "-").replace("_", "-")] for name in names]
