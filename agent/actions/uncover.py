"""Before an element click: make sure the click at the element's centre reaches the element.

AT-SPI says where an element is, not whether another window lies over it: a dialog behind the
window an agent just opened is still "showing". A click aimed at it would land on the window in
front, and the agent would never know. So the X server is asked what a click at the point
reaches (``WindowService.at``). When that is another process's window, or another window of the
same process, the element's own window is brought to the front first. When something stays in
front (a modal dialog, an always-on-top window), the click is refused with 409 naming it: a
refusal is always about a window that was asked to come to the front and did not.

The element's X window is its process's window whose title is the accessible window's name or
whose rectangle is the accessible window's extents (toolkits report the frame, decorations
included); failing both, its process's window at the point. Where nothing can tell (no
X-Resource, an application on another host, no window service, a process with no window of its
own at the point, another window of the same process that neither name nor geometry tells
apart), the click goes ahead as aimed, as it did before this check existed.
"""

from __future__ import annotations

import asyncio

from agent.a11y import elements
from agent.a11y.node import Ref
from agent.a11y.service import Accessibility
from agent.errors import ElementCovered, NotFound, WindowNotFound
from agent.x11.windows import WindowAt, WindowInfo, WindowService, format_window_id

SETTLE_SECONDS = 2.0  # how long a raised window gets to come out on top (a loaded WM is slow)
GEOMETRY_SLACK = 2  # pixels between the accessible window's extents and the X window's


def is_window_of(window: WindowInfo, element_window: elements.Toplevel) -> bool:
    """Whether the X ``window`` is the element's accessible window (same process, title or place)."""
    if window.pid != element_window.pid:
        return False
    if element_window.name and window.title == element_window.name:
        return True
    box = element_window.extents
    if box is None:
        return False
    frame = window.frame
    outer = (
        window.x - frame.left,
        window.y - frame.top,
        window.width + frame.left + frame.right,
        window.height + frame.top + frame.bottom,
    )
    inner = (window.x, window.y, window.width, window.height)
    wanted = (box.x, box.y, box.width, box.height)
    return any(
        all(abs(a - b) <= GEOMETRY_SLACK for a, b in zip(rect, wanted, strict=True))
        for rect in (outer, inner)
    )


def _reaches(hit: WindowAt, element_window: elements.Toplevel, own: WindowInfo | None) -> bool:
    """Whether a click on ``hit`` goes to the element's window; a popup (no client) of the same
    process belongs to the window it opened from."""
    if hit.pid != element_window.pid:
        return False
    return hit.client is None or own is None or hit.client.id == own.id


async def uncover(
    accessibility: Accessibility, windows: WindowService, element_id: str, x: int, y: int
) -> str | None:
    """Bring the element's window to the front if a click at (x, y) would miss it.

    Returns the id of the window raised, None when nothing had to be; raises Conflict when the
    point stays covered.
    """
    hit = await windows.at(x, y)
    if hit.pid is None:
        return None
    pid = await accessibility.app_pid(Ref.parse(element_id).bus, asyncio.get_running_loop().time() + 1.0)
    if pid is None:
        return None
    theirs = [w for w in hit.windows if w.pid == pid and not w.minimized]
    if hit.pid == pid and (hit.client is None or len(theirs) == 1):
        return None  # the common case, decided without climbing to the element's window
    if not theirs:
        return None  # its process shows no window of its own (a helper process?): click as aimed
    element_window = await elements.toplevel(accessibility, element_id)
    if hit.pid == pid and hit.client is not None and is_window_of(hit.client, element_window):
        return None
    own = next((w for w in theirs if is_window_of(w, element_window)), None)
    if own is None:
        if hit.pid == pid:
            return None  # none of its windows can be told apart: its process is in front anyway
        own = next((w for w in theirs if w.x <= x < w.x + w.width and w.y <= y < w.y + w.height), None)
        if own is None:
            return None  # its window is none we can name (a popup?): click as aimed
    try:
        await windows.request_focus(own.id)
    except NotFound:
        raise WindowNotFound(
            own.hex_id, f"the window of the element {element_id} closed", id=element_id
        ) from None
    loop = asyncio.get_running_loop()
    settle = loop.time() + SETTLE_SECONDS
    while not _reaches(hit := await windows.at(x, y), element_window, own):
        if loop.time() >= settle:
            raise _covered(element_id, x, y, hit)
        await asyncio.sleep(0.01)
    return own.hex_id


def _covered(element_id: str, x: int, y: int, hit: WindowAt) -> ElementCovered:
    window = hit.client.hex_id if hit.client else format_window_id(hit.window)
    title = hit.client.title if hit.client else ""
    named = f" ({title!r})" if title else ""
    return ElementCovered(
        f"the element {element_id} is covered at ({x}, {y}) by window {window}{named} of pid {hit.pid}",
        details={
            "id": element_id,
            "x": x,
            "y": y,
            "covered_by": {"window": window, "title": title, "pid": hit.pid},
        },
    )
