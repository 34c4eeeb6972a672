"""POST /desktop/wait-for: wait for a condition instead of sleeping, and say what happened.

Screen conditions are answered by the X DAMAGE monitor alone (no screenshots). Window,
element and text conditions are checked when the screen changes (a window that appears,
closes or takes focus repaints something; so does an element that appears), at most every
``MIN_GAP`` seconds, and at least every ``FALLBACK`` seconds for changes that draw nothing.
A timeout is an answer (``met: false``), not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from agent.a11y import elements
from agent.a11y.details import holds_text
from agent.a11y.node import DESKTOP_ID, Node, WalkOptions
from agent.a11y.service import Accessibility
from agent.actions.accessibility import _service
from agent.actions.capabilities import Capability, Conditional
from agent.actions.registry import REGISTRY
from agent.errors import ApplicationNotFound, DisplayUnavailable, InvalidArgument
from agent.models.accessibility import FoundNode
from agent.models.observe import ChangedRegion, WaitForRequest, WaitForResult
from agent.models.windows import Window
from agent.services import Services
from agent.x11.change_watch import ChangeWatch, watching
from agent.x11.damage import Rect
from agent.x11.window_list import WindowInfo

T = TypeVar("T")

STABLE_QUIET_MS = 300  # screen_stable's quiet_ms when not given
MIN_GAP = {"window": 0.03, "element": 0.15, "text": 0.15}  # seconds between two checks
FALLBACK = {"window": 0.25, "element": 0.5, "text": 0.5}  # seconds without a change before a check
A11Y_CHECK_TIMEOUT = 5.0  # one accessibility search's deadline (bounded by the wait's)


async def wait_for(services: Services, req: WaitForRequest) -> WaitForResult:
    started = time.monotonic()
    deadline = started + req.timeout
    if req.condition in ("screen_stable", "screen_changed"):
        values = await _screen(services, req, deadline)
    elif req.condition == "window":
        values = await _window(services, req, deadline)
    else:
        values = await _element(services, req, deadline)
    return WaitForResult(
        condition=req.condition, elapsed_ms=round((time.monotonic() - started) * 1000, 1), **values
    )


async def _screen(services: Services, req: WaitForRequest, deadline: float) -> dict[str, Any]:
    if services.damage is None:
        raise DisplayUnavailable("this agent has no screen-change monitor (X DAMAGE)")
    region = Rect(req.region.x, req.region.y, req.region.width, req.region.height) if req.region else None
    async with watching(services.damage, region) as watch:
        if req.condition == "screen_stable":
            quiet_ms = req.quiet_ms or STABLE_QUIET_MS
            met = await watch.quiet(quiet_ms / 1000, deadline)
            return {"met": met, "changes": watch.count}
        change = await watch.changed(deadline)
    if change is None:
        return {"met": False, "changes": 0}
    box = change.bounds
    return {
        "met": True,
        "changes": watch.count,
        "changed": ChangedRegion(x=box.x, y=box.y, width=box.width, height=box.height),
    }


@contextlib.asynccontextmanager
async def _optional_watch(services: Services) -> AsyncIterator[ChangeWatch | None]:
    """Screen changes to wake checks early; polling alone when there is no monitor or it fails."""
    async with contextlib.AsyncExitStack() as stack:
        watch = None
        if services.damage is not None:
            with contextlib.suppress(DisplayUnavailable):
                watch = await stack.enter_async_context(watching(services.damage))
        yield watch


async def _poll(
    services: Services, kind: str, deadline: float, check: Callable[[float], Awaitable[T | None]]
) -> T | None:
    """``check(deadline)`` until it returns something or ``deadline`` passes; re-checked when the
    screen changes (at most every MIN_GAP s), else every FALLBACK s."""
    async with _optional_watch(services) as watch:
        while True:
            checked = time.monotonic()
            found = await check(deadline)
            if found is not None:
                return found
            now = time.monotonic()
            if now >= deadline:
                return None
            await asyncio.sleep(max(0.0, min(MIN_GAP[kind] - (now - checked), deadline - now)))
            now = time.monotonic()
            wait = min(FALLBACK[kind], deadline - now)
            if watch is None:
                await asyncio.sleep(max(0.0, wait))
            elif watch.count == 0 or watch.last is None or watch.last.at <= checked:
                await watch.next_change(wait)  # else a change came during the check: look again


# -- windows -------------------------------------------------------------------------------
def _window_matcher(req: WaitForRequest) -> Callable[[WindowInfo], bool]:
    title = re.compile(req.title) if req.title is not None else None
    wm_class = re.compile(req.window_class) if req.window_class is not None else None

    def matches(window: WindowInfo) -> bool:
        return (title is None or title.search(window.title) is not None) and (
            wm_class is None or bool(wm_class.search(window.wm_class) or wm_class.search(window.instance))
        )

    return matches


async def _window(services: Services, req: WaitForRequest, deadline: float) -> dict[str, Any]:
    windows = services.windows
    if windows is None:
        raise InvalidArgument("condition 'window' needs the window service, which this agent lacks")
    matches = _window_matcher(req)

    async def check(_: float) -> Window | bool | None:
        found = [window for window in await windows.list_windows() if matches(window)]
        if req.state == "disappears":
            return True if not found else None
        if req.state == "focused":
            found = [window for window in found if window.focused]
        if not found:
            return None
        return Window.model_validate(found[0])

    result = await _poll(services, "window", deadline, check)
    if result is None:
        return {"met": False}
    return {"met": True, "window": result if isinstance(result, Window) else None}


# -- accessibility ---------------------------------------------------------------------------
async def _element(services: Services, req: WaitForRequest, deadline: float) -> dict[str, Any]:
    service = _service(services)

    async def check(until: float) -> FoundNode | bool | None:
        timeout = max(0.05, min(A11Y_CHECK_TIMEOUT, until - time.monotonic()))
        try:
            node = await (
                _find_text(service, req, timeout) if req.condition == "text" else _find(service, req, timeout)
            )
        except ApplicationNotFound:  # `app` not running (yet, or any more): nothing of it matches
            node = None
        if req.state == "disappears":
            return True if node is None else None
        if node is None:
            return None
        return FoundNode.model_validate(node)

    result = await _poll(services, req.condition, deadline, check)
    if result is None:
        return {"met": False}
    return {"met": True, "element": result if isinstance(result, FoundNode) else None}


async def _find(service: Accessibility, req: WaitForRequest, timeout: float) -> Node | None:
    query = elements.Query(
        role=req.role,
        name=req.name,
        name_contains=req.name_contains,
        states=tuple(req.states or ()),
        app=req.app,
        max_results=1,
        visible_only=bool(req.visible_only),
        timeout=timeout,
    )
    nodes, _ = await elements.find(service, query)
    return nodes[0] if nodes else None


async def _find_text(service: Accessibility, req: WaitForRequest, timeout: float) -> Node | None:
    """The first element whose name or text content contains ``req.text`` (case-insensitive)."""
    wanted_roles = elements.parse_roles([req.role]) if req.role else None
    needle = (req.text or "").casefold()

    def matches(node: Node) -> bool:
        return (wanted_roles is None or node.role in wanted_roles) and (
            needle in node.name.casefold() or (node.text is not None and needle in node.text.casefold())
        )

    def may_match(node: Node) -> bool:
        """Before the walk read its text: the nodes whose details (position, text) it must read."""
        return (wanted_roles is None or node.role in wanted_roles) and (
            needle in node.name.casefold() or holds_text(node)
        )

    options = WalkOptions(
        visible_only=bool(req.visible_only), timeout=timeout, details=True, positions_for=may_match
    )
    result = await service.tree(options, app=req.app)
    for node in result.root.iter():
        if node.ref.path != DESKTOP_ID and matches(node):
            return node
    return None


REGISTRY.add(
    "wait_for",
    WaitForRequest,
    wait_for,
    route="/desktop/wait-for",
    result=WaitForResult,
    tag="screen",
    conditional=Conditional(
        Capability.ACCESSIBILITY,
        lambda req: req.condition in ("element", "text"),
        "the condition is element or text",
        {"condition": "element", "role": "button", "name": "OK"},
    ),
    summary="Wait for a condition (screen stable or changed, a window, an accessibility element or text)",
    description=(
        "`condition` selects what to wait for, and which other fields apply:\n\n"
        "- `screen_stable`: no screen change (X DAMAGE, not screenshots) for `quiet_ms` (300), "
        "optionally only in `region`;\n"
        "- `screen_changed`: any change (in `region`), answered with its bounding box;\n"
        "- `window`: a window whose `title` and/or `class` (regexes) match `appears` (exists), "
        "`disappears` (none exists) or is `focused`;\n"
        "- `element`: an accessibility query (`role`, `name`, `name_contains`, `states`, `app`, "
        "`visible_only`, as /desktop/accessibility/find) `appears` (matches) or `disappears`;\n"
        "- `text`: an element whose name or text contains `text` (case-insensitive) `appears` or "
        "`disappears`.\n\n"
        "Every condition takes `timeout` (seconds, default 10). A timeout is a 200 with `met: false`; "
        "`elapsed_ms` says how long the wait took and `window` / `element` / `changed` what matched."
    ),
)
