"""Long lists: the children of MANAGES_DESCENDANTS containers, the rows on screen first.

A GTK file chooser's list of 1,000 files has 4,000 cells, which the toolkit creates on demand
and reports as showing even when scrolled out of view. Which rows are on screen comes from a
column of hit tests down the container; with ``visible_only`` only those rows are fetched,
otherwise they come first, so that a node budget or deadline keeps what the user sees.
"""

from __future__ import annotations

from agent.a11y.cache import CacheItem
from agent.a11y.dbus import Call
from agent.a11y.details import SCREEN_COORDS, Batch
from agent.a11y.node import ACCESSIBLE, COMPONENT, NULL_PATH, PROPERTIES, Node, Ref, ScreenRect

# Children beyond this many in a MANAGES_DESCENDANTS container are ordered visible-first.
LARGE_CONTAINER = 64

Entry = tuple[int, Ref | CacheItem, bool]  # index in parent, what we know of it, off screen


async def managed_children(
    batch: Batch, node: Node, *, hidden: bool, visible_only: bool, screen: ScreenRect | None
) -> list[Entry]:
    """Children of a MANAGES_DESCENDANTS container, the ones on screen first.

    Toolkits report such children (GTK tree view cells) as showing even when scrolled out
    of view, so which are on screen comes from hit tests down the container instead.
    """
    count_outcome, extents_outcome = await batch(
        [
            Call(node.ref.path, PROPERTIES, "Get", "ss", (ACCESSIBLE, "ChildCount")),
            Call(node.ref.path, COMPONENT, "GetExtents", "u", (SCREEN_COORDS,)),
        ]
    )
    count = int(count_outcome[0].value) if isinstance(count_outcome, list) else 0
    node.child_count = count
    window: tuple[int, int] | None = None
    if count > LARGE_CONTAINER and isinstance(extents_outcome, list) and not hidden:
        window = await visible_window(batch, node, ScreenRect(*extents_outcome[0]), count, screen)
    if window is None or not visible_only:
        outcome = (await batch([Call(node.ref.path, ACCESSIBLE, "GetChildren")]))[0]
        refs = [Ref(bus, path) for bus, path in outcome[0]] if isinstance(outcome, list) else []
        if window is None:
            return [(i, ref, hidden) for i, ref in enumerate(refs)]
        first, last = window
        on: list[Entry] = [(i, refs[i], False) for i in range(first, min(last, len(refs)))]
        off: list[Entry] = [(i, ref, True) for i, ref in enumerate(refs) if not first <= i < last]
        return on + off  # on-screen rows first, so a cut keeps what the user sees
    first, last = window
    indexes = list(range(min(8, first))) + list(range(first, last))
    outcomes = await batch([Call(node.ref.path, ACCESSIBLE, "GetChildAtIndex", "i", (i,)) for i in indexes])
    return [(i, Ref(*o[0]), False) for i, o in zip(indexes, outcomes, strict=True) if isinstance(o, list)]


async def visible_window(
    batch: Batch, node: Node, box: ScreenRect, count: int, screen: ScreenRect | None
) -> tuple[int, int] | None:
    """Index range of the children on screen, from a column of hit tests down the container.

    Rows are evenly spaced, so the indexes hit at known heights give indexes per pixel, and
    the range is extrapolated to the container's visible top and bottom, plus a row or so.
    """
    visible = box.clip(screen) if screen is not None else box
    if visible is None:
        return (0, 0)
    x = visible.x + min(visible.width // 4, 40)
    points = [visible.y + 2 + (visible.height - 4) * k // 12 for k in range(13)]
    hits = await batch(
        [Call(node.ref.path, COMPONENT, "GetAccessibleAtPoint", "iiu", (x, y, SCREEN_COORDS)) for y in points]
    )
    probed = [
        (y, h[0][1])
        for y, h in zip(points, hits, strict=True)
        if isinstance(h, list) and h[0][1] != NULL_PATH
    ]
    if not probed:
        return None
    indexes = await batch([Call(path, ACCESSIBLE, "GetIndexInParent") for _, path in probed])
    found = [
        (y, int(i[0]))
        for (y, _), i in zip(probed, indexes, strict=True)
        if isinstance(i, list) and int(i[0]) >= 0
    ]
    if not found:
        return None
    (top_y, first), (bottom_y, last) = min(found, key=lambda f: f[1]), max(found, key=lambda f: f[1])
    per_pixel = (last - first) / (bottom_y - top_y) if bottom_y > top_y else 0.0
    row = int(per_pixel * 32) + 2  # a generous row of children
    first -= int(per_pixel * (top_y - visible.y)) + row
    last += int(per_pixel * (visible.y + visible.height - bottom_y)) + row
    return max(0, first), min(count, last + 1)
