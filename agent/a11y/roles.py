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


# -- ARIA role names ----------------------------------------------------------------------------
# Callers (and models) know the ARIA / Playwright role names, not AT-SPI's. Each AT-SPI role that
# has an ARIA equivalent maps to it, as browsers map ARIA to AT-SPI (Chromium's and Firefox's
# tables, read backwards); AT-SPI roles with no ARIA counterpart (desktop frame, filler
# containers' chrome like scroll pane or viewport, terminal, label...) have none.
ARIA_OF_ATSPI: dict[str, str] = {
    "alert": "alertdialog",
    "application": "application",
    "article": "article",
    "block quote": "blockquote",
    "caption": "caption",
    "check box": "checkbox",
    "check menu item": "menuitemcheckbox",
    "column header": "columnheader",
    "combo box": "combobox",
    "autocomplete": "combobox",
    "comment": "comment",
    "content deletion": "deletion",
    "content insertion": "insertion",
    "definition": "definition",
    "description term": "term",
    "description value": "definition",
    "dialog": "dialog",
    "document frame": "document",
    "document web": "document",
    "document text": "document",
    "document email": "document",
    "document spreadsheet": "document",
    "document presentation": "document",
    "editbar": "textbox",
    "entry": "textbox",
    "filler": "generic",
    "form": "form",
    "frame": "window",
    "grouping": "group",
    "heading": "heading",
    "icon": "img",
    "image": "img",
    "level bar": "meter",
    "link": "link",
    "list": "list",
    "list box": "listbox",
    "list item": "listitem",
    "log": "log",
    "mark": "mark",
    "marquee": "marquee",
    "math": "math",
    "menu": "menu",
    "menu bar": "menubar",
    "menu item": "menuitem",
    "notification": "alert",
    "page tab": "tab",
    "page tab list": "tablist",
    "panel": "group",
    "paragraph": "paragraph",
    "password text": "textbox",
    "popup menu": "menu",
    "progress bar": "progressbar",
    "push button": "button",
    "push button menu": "button",
    "radio button": "radio",
    "radio menu item": "menuitemradio",
    "row header": "rowheader",
    "scroll bar": "scrollbar",
    "section": "generic",
    "separator": "separator",
    "slider": "slider",
    "spin button": "spinbutton",
    "status bar": "status",
    "subscript": "subscript",
    "superscript": "superscript",
    "table": "table",
    "table cell": "cell",
    "table column header": "columnheader",
    "table row": "row",
    "table row header": "rowheader",
    "tearoff menu item": "menuitem",
    "text": "textbox",
    "timer": "timer",
    "toggle button": "button",
    "tool bar": "toolbar",
    "tool tip": "tooltip",
    "tree": "tree",
    "tree item": "treeitem",
    "tree table": "treegrid",
    "window": "window",
}
# ARIA names AT-SPI 2.46 has no role for, and the AT-SPI roles toolkits use in their place
# (GTK 3's GtkSwitch is a toggle button).
ARIA_STAND_INS: dict[str, tuple[str, ...]] = {"switch": ("toggle button",)}

ARIA_BY_ROLE: tuple[str | None, ...] = tuple(ARIA_OF_ATSPI.get(name) for name in ROLE_NAMES)
ARIA_NAMES: tuple[str, ...] = tuple(sorted(set(ARIA_OF_ATSPI.values()) | set(ARIA_STAND_INS)))
NODE_ARIA_NAMES: tuple[str, ...] = tuple(sorted(set(ARIA_OF_ATSPI.values())))  # what nodes carry


def aria_role(number: int) -> str | None:
    """The ARIA name of an AT-SPI role number; None when ARIA has no equivalent."""
    return ARIA_BY_ROLE[number] if 0 <= number < len(ARIA_BY_ROLE) else None


def _role_query_table() -> dict[str, frozenset[int]]:
    """Every name a role filter accepts, with the AT-SPI roles it matches.

    An AT-SPI name matches that role; an ARIA name matches every AT-SPI role mapped to it (and
    its stand-ins); a name that is both (``menu``, ``window``, ``alert``) matches the union.
    """
    table: dict[str, set[int]] = {name: {number} for number, name in enumerate(ROLE_NAMES)}
    for number, aria in enumerate(ARIA_BY_ROLE):
        if aria is not None:
            table.setdefault(aria, set()).add(number)
    for aria, stand_ins in ARIA_STAND_INS.items():
        table.setdefault(aria, set()).update(ROLE_NUMBERS[name] for name in stand_ins)
    return {name: frozenset(numbers) for name, numbers in table.items()}


ROLE_QUERY: dict[str, frozenset[int]] = _role_query_table()


def parse_role(name: str) -> frozenset[int]:
    """The AT-SPI roles a filter name matches: an AT-SPI name ("push button", "push_button") or
    an ARIA name ("button"), any case; unknown names raise KeyError."""
    key = name.strip().lower().replace("_", " ").replace("-", " ")
    found = ROLE_QUERY.get(key)
    if found is None:
        raise KeyError(name)
    return found


def known_roles() -> dict[str, list[str]]:
    """What an unknown-role 400 lists: both vocabularies."""
    return {"aria": list(ARIA_NAMES), "atspi": list(ROLE_NAMES)}


def aria_vocabulary() -> dict[str, list[str]]:
    """Each ARIA name with the AT-SPI roles it matches (the OpenAPI document publishes this)."""
    return {aria: sorted(ROLE_NAMES[number] for number in ROLE_QUERY[aria]) for aria in ARIA_NAMES}
