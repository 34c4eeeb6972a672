"""Details of showing nodes: position, actions, value and text, fetched in one pipelined round.

Only showing nodes get them: for hidden ones toolkits report no meaningful position (GTK says
-2147483648), and their actions and text are not what a user can reach. Text is read only for
text-like roles (labels repeat their name; password fields are never read) and bounded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agent.a11y import roles
from agent.a11y.dbus import Call, Outcome
from agent.a11y.node import ACTION, COMPONENT, PROPERTIES, TEXT, VALUE, Node, ScreenRect, WalkOptions

SCREEN_COORDS = 0
INT_MIN = -(2**31)  # GTK's "nowhere" for unmapped widgets and cells
TEXT_ROLES = frozenset(
    roles.ROLE_NUMBERS[name]
    for name in (
        "text",
        "entry",
        "paragraph",
        "terminal",
        "document frame",
        "document text",
        "document web",
        "spin button",
        "combo box",
        "editbar",
        "autocomplete",
    )
)
# Containers that clip their children: a child outside them is scrolled out of view.
CLIPPING_ROLES = frozenset(
    roles.ROLE_NUMBERS[name]
    for name in ("viewport", "scroll pane", "table", "tree table", "tree", "list", "list box")
)

Batch = Callable[[list[Call]], Awaitable[list[Outcome]]]


async def fetch_details(batch: Batch, nodes: list[Node], options: WalkOptions) -> None:
    """Fill in position (always), and actions, value and text (with ``options.details``)."""
    calls, slots = _detail_calls(nodes, options.details)
    if not calls:
        return
    texts = _apply_details(slots, await batch(calls))
    if texts:
        await _fetch_texts(batch, texts, options.text_limit)


def holds_text(node: Node) -> bool:
    """Whether the walk reads the node's text content (with details): text fields and views."""
    return TEXT in node.interfaces and node.role in TEXT_ROLES


def _detail_calls(nodes: list[Node], details: bool) -> tuple[list[Call], list[tuple[Node, str]]]:
    """The calls for each node's position (and details), with what each answer fills in."""
    calls: list[Call] = []
    slots: list[tuple[Node, str]] = []
    for node in nodes:
        path = node.ref.path
        if COMPONENT in node.interfaces:
            calls.append(Call(path, COMPONENT, "GetExtents", "u", (SCREEN_COORDS,)))
            slots.append((node, "extents"))
        if not details:
            continue
        if ACTION in node.interfaces:
            calls.append(Call(path, ACTION, "GetActions"))
            slots.append((node, "actions"))
        if VALUE in node.interfaces:
            calls.append(Call(path, PROPERTIES, "Get", "ss", (VALUE, "CurrentValue")))
            slots.append((node, "value"))
        if holds_text(node):
            calls.append(Call(path, PROPERTIES, "Get", "ss", (TEXT, "CharacterCount")))
            slots.append((node, "length"))
    return calls, slots


def _apply_details(slots: list[tuple[Node, str]], outcomes: list[Outcome]) -> list[tuple[Node, int]]:
    """Fill the answers into their nodes; the text nodes with characters to read are returned."""
    texts: list[tuple[Node, int]] = []
    for (node, kind), outcome in zip(slots, outcomes, strict=True):
        if not isinstance(outcome, list):
            continue
        if kind == "extents":
            x, y, width, height = outcome[0]
            if INT_MIN not in (x, y):
                node.extents = ScreenRect(x, y, width, height)
        elif kind == "actions":
            node.actions = tuple(name for name, _, _ in outcome[0])
        elif kind == "value":
            node.value = float(outcome[0].value)
        elif int(outcome[0].value) > 0:
            texts.append((node, int(outcome[0].value)))
    return texts


async def _fetch_texts(batch: Batch, texts: list[tuple[Node, int]], limit: int) -> None:
    """Read each node's text, at most ``limit`` characters (``text_truncated`` says when cut)."""
    outcomes = await batch(
        [Call(n.ref.path, TEXT, "GetText", "ii", (0, min(length, limit))) for n, length in texts]
    )
    for (node, length), outcome in zip(texts, outcomes, strict=True):
        if isinstance(outcome, list):
            node.text = str(outcome[0])
            node.text_truncated = length > limit


def prune_offscreen(node: Node, clip: ScreenRect | None) -> None:
    """Drop descendants outside ``clip`` (the screen, then each clipping container)."""
    if node.role in CLIPPING_ROLES and node.extents is not None:
        clip = node.extents
    kept = []
    for child in node.children:
        box = child.extents
        if box is not None and (box.width <= 0 or box.height <= 0 or (clip and not box.intersects(clip))):
            continue
        kept.append(child)
        prune_offscreen(child, clip)
    node.children = kept
