"""One running Chromium: its CDP connection, its tabs and the sessions attached to them.

Tabs are Chromium's ``page`` targets, followed through ``Target.setDiscoverTargets`` events
(opened, retitled, navigated, closed, also when the user does it by hand); a tab's id is its
target id. The agent attaches to a tab (a flattened CDP session) the first time it acts on it
and stays attached while the tab lives, so a viewport override it set keeps holding.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.browser.cdp import CdpConnection, CdpError, ConnectionClosed
from agent.browser.process import BrowserProcess
from agent.errors import BrowserRefused, DeadlineExceeded, LastTab, TabNotFound

LOG = logging.getLogger(__name__)

EVALUATE_TIMEOUT = 10.0  # a page showing alert() or stuck in a script answers nothing
STOP_TIMEOUT = 1.0
VISIBLE_TIMEOUT = 1.0  # the probe of which tab is on screen: a tab that does not answer is not
NAVIGATING_GRACE = 2.0  # how long a read waits for a pending navigation to reach the page
KEPT_LOADS = 64  # load events remembered for navigations nobody waits for (yet)

NAVIGATION_EVENTS = frozenset(
    {
        "Page.frameStartedNavigating",
        "Page.frameNavigated",
        "Page.navigatedWithinDocument",
        "Page.frameStoppedLoading",
    }
)

# What page_context reports, read in one evaluation.
CONTEXT_SCRIPT = """(() => {
  const root = document.documentElement;
  return {url: location.href, title: document.title, scroll_x: scrollX, scroll_y: scrollY,
          viewport_width: innerWidth, viewport_height: innerHeight,
          page_width: root ? root.scrollWidth : 0, page_height: root ? root.scrollHeight : 0,
          device_scale_factor: devicePixelRatio};
})()"""


@dataclass
class TabState:
    id: str
    url: str
    title: str
    order: int  # discovery order: the first one open is the main tab
    crashed: bool = False  # its renderer died ("Aw, Snap!") and it has not been reloaded since
    navigating: str | None = None  # a main-frame navigation whose page has not arrived yet
    settled: asyncio.Event | None = None  # set on a crash, a commit or a stop (waiters wake)

    def changed(self) -> None:
        if self.settled is not None:
            self.settled.set()
            self.settled = None


class RunningBrowser:
    def __init__(self, process: BrowserProcess, cdp: CdpConnection) -> None:
        self.process = process
        self.cdp = cdp
        self.version = ""
        self.tabs: dict[str, TabState] = {}
        self.current: str | None = None
        self.on_closed: Callable[[RunningBrowser], None] | None = None
        self._order = itertools.count()
        self._sessions: dict[str, str] = {}  # target id -> session id
        self._attaching: dict[str, asyncio.Task[str]] = {}
        self._loads: dict[tuple[str, str], asyncio.Future[None]] = {}  # (session, loader id)
        cdp.listen(self._event)

    async def start(self) -> None:
        self.version = str((await self.cdp.send("Browser.getVersion")).get("product", ""))
        await self.cdp.send("Target.setDiscoverTargets", {"discover": True, "filter": [{"type": "page"}]})
        for info in (await self.cdp.send("Target.getTargets")).get("targetInfos", []):
            self._seen(info)
        if self.current is None and self.tabs:
            self.current = next(iter(self.tabs))

    async def refresh(self) -> None:
        """Re-read every tab's URL and title from the browser (Chromium sends no event when only
        a page's <title> changes; this is browser-side, so a busy or crashed page cannot hold it)."""
        reply = await asyncio.wait_for(self.cdp.send("Target.getTargets"), EVALUATE_TIMEOUT)
        for info in reply.get("targetInfos", []):
            if str(info.get("targetId")) in self.tabs:
                self._seen(info)

    @property
    def alive(self) -> bool:
        return not self.cdp.closed.is_set()

    @property
    def main_tab(self) -> str | None:
        return min(self.tabs.values(), key=lambda tab: tab.order).id if self.tabs else None

    def tab(self, tab_id: str | None) -> TabState:
        """The tab named, or the current one; 404 for an id that is not an open tab."""
        wanted = tab_id if tab_id is not None else self.current
        if wanted is None or wanted not in self.tabs:
            if tab_id is None and self.tabs:  # the current tab closed: the newest one left
                self.current = max(self.tabs.values(), key=lambda tab: tab.order).id
                return self.tabs[self.current]
            raise TabNotFound(
                f"no open tab {tab_id!r} (GET /browser/tabs lists them)"
                if tab_id
                else "the browser has no tab open",
                details={"tab_id": tab_id},
            )
        return self.tabs[wanted]

    async def resolve(self, tab_id: str | None) -> TabState:
        """The tab named, else the current one: the tab the agent last opened or switched to,
        unless it is in the background and another tab is on screen (the user switched by hand,
        or a page opened one), which then becomes current."""
        tab = self.tab(tab_id)
        if tab_id is not None or len(self.tabs) < 2 or await self._visible(tab):
            return tab
        for other in sorted(self.tabs.values(), key=lambda t: t.order, reverse=True):
            if other is not tab and await self._visible(other):
                self.current = other.id
                return other
        return tab

    async def _visible(self, tab: TabState) -> bool:
        if tab.crashed:
            return False
        if tab.navigating is not None:
            return tab.id == self.current  # its page cannot answer yet: assume it stayed
        try:
            state = await self.evaluate(
                await self.session(tab), "document.visibilityState", cap=VISIBLE_TIMEOUT
            )
            return bool(state == "visible")
        except (CdpError, DeadlineExceeded, BrowserRefused):  # closing, or stuck: not the one on screen
            return False

    # -- events ---------------------------------------------------------------------------------
    def _event(self, method: str, params: dict[str, Any], session: str | None) -> None:
        if method in ("Target.targetCreated", "Target.targetInfoChanged"):
            self._seen(params.get("targetInfo", {}))
        elif method == "Target.targetDestroyed":
            self._gone(str(params.get("targetId")))
        elif method == "Target.detachedFromTarget":
            self._sessions.pop(str(params.get("targetId")), None)
        elif method == "Target.targetCrashed":
            self._crashed(str(params.get("targetId")), True)
        elif method == "Inspector.targetReloadedAfterCrash" and session is not None:
            self._crashed(self._target_of(session), False)
        elif method in NAVIGATION_EVENTS and session is not None:
            self._navigation(method, params, self._target_of(session))
        elif method == "Page.lifecycleEvent" and params.get("name") == "load" and session is not None:
            future = self._load(session, str(params.get("loaderId")))
            if not future.done():
                future.set_result(None)
        elif method == "Connection.closed" and self.on_closed is not None:
            self.on_closed(self)

    def _seen(self, info: dict[str, Any]) -> None:
        if info.get("type") != "page":
            return
        target = str(info["targetId"])
        tab = self.tabs.get(target)
        if tab is None:
            self.tabs[target] = TabState(
                target, str(info.get("url", "")), str(info.get("title", "")), next(self._order)
            )
        else:
            tab.url, tab.title = str(info.get("url", tab.url)), str(info.get("title", tab.title))

    def _target_of(self, session: str) -> str:
        return next((target for target, known in self._sessions.items() if known == session), "")

    def _crashed(self, target: str, crashed: bool) -> None:
        tab = self.tabs.get(target)
        if tab is not None:
            tab.crashed = crashed
            tab.navigating = None
            tab.changed()

    def _navigation(self, method: str, params: dict[str, Any], target: str) -> None:
        """Follow the main frame's navigations: while one waits for its server, Chromium holds
        every command to the page, so reads must not queue behind it unbounded."""
        tab = self.tabs.get(target)
        frame = (
            params.get("frame", {}).get("id") if method == "Page.frameNavigated" else params.get("frameId")
        )
        if tab is None or frame != target:
            return
        if method == "Page.frameStartedNavigating":
            tab.navigating = str(params.get("url", ""))
        else:  # committed, navigated within the document or stopped
            tab.navigating = None
            if method == "Page.frameNavigated":
                tab.crashed = False
        tab.changed()

    def _gone(self, target: str) -> None:
        self.tabs.pop(target, None)
        self._sessions.pop(target, None)
        if self.current == target:
            self.current = max(self.tabs.values(), key=lambda tab: tab.order).id if self.tabs else None

    def _load(self, session: str, loader: str) -> asyncio.Future[None]:
        key = (session, loader)
        future = self._loads.get(key)
        if future is None:
            if len(self._loads) >= KEPT_LOADS:
                for old in [k for k, f in self._loads.items() if f.done()][: KEPT_LOADS // 2]:
                    del self._loads[old]
            future = self._loads[key] = asyncio.get_running_loop().create_future()
        return future

    # -- sessions and commands -----------------------------------------------------------------
    async def session(self, tab: TabState) -> str:
        """The tab's CDP session, attached (with page lifecycle events) on first use."""
        known = self._sessions.get(tab.id)
        if known is not None:
            return known
        task = self._attaching.get(tab.id)
        if task is None:
            task = self._attaching[tab.id] = asyncio.create_task(self._attach(tab.id))
            task.add_done_callback(lambda _: self._attaching.pop(tab.id, None))
        return await asyncio.shield(task)

    async def _attach(self, target: str) -> str:
        reply = await self.cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        session = str(reply["sessionId"])
        await self.cdp.send("Page.enable", session=session)
        await self.cdp.send("Page.setLifecycleEventsEnabled", {"enabled": True}, session=session)
        self._sessions[target] = session
        return session

    async def ready(self, tab: TabState) -> None:
        """Raise at once for a crashed tab (409); wait a moment for a pending navigation to
        reach the page, then 504 rather than queue behind a server that does not answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NAVIGATING_GRACE
        while tab.navigating is not None and not tab.crashed and loop.time() < deadline:
            settled = tab.settled = tab.settled or asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), max(0.0, deadline - loop.time()))
        if tab.crashed:
            raise BrowserRefused(
                "the tab crashed (its page's process died); navigate it (POST /browser/navigate) to reload it",
                details={"tab_id": tab.id, "crashed": True},
            )
        if tab.navigating is not None:
            raise DeadlineExceeded(
                f"the tab is loading {tab.navigating} and its server has not answered yet; "
                "its page answers once it does (or navigate elsewhere)",
                details={"tab_id": tab.id, "navigating": tab.navigating},
            )

    async def evaluate(
        self, session: str, expression: str, *, wait: bool = False, cap: float = EVALUATE_TIMEOUT
    ) -> Any:
        """A JavaScript expression's value (JSON-able), in the page's main world; ``wait``: the
        value of the promise it returns. Within ``cap`` seconds, and at once if the tab crashes."""
        tab = self.tabs.get(self._target_of(session))
        if tab is not None:
            await self.ready(tab)
        command = asyncio.ensure_future(
            self.cdp.send(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True, "awaitPromise": wait},
                session=session,
            )
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cap
        try:
            while not command.done() and loop.time() < deadline:
                waiters: set[asyncio.Future[Any]] = {command}
                if tab is not None:
                    settled = tab.settled = tab.settled or asyncio.Event()
                    waiters.add(asyncio.ensure_future(settled.wait()))
                await asyncio.wait(
                    waiters, timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in waiters - {command}:
                    waiter.cancel()
                if tab is not None and tab.crashed:
                    await self.ready(tab)  # raises: the tab crashed while it was asked
        finally:
            if not command.done():
                command.cancel()
        if not command.done():
            raise DeadlineExceeded(
                f"the page did not answer within {cap:g}s (a dialog is open or a script is busy)"
            )
        reply = command.result()
        if "exceptionDetails" in reply:
            LOG.debug("evaluation failed: %s", reply["exceptionDetails"])
            return None
        return reply.get("result", {}).get("value")

    async def stop_loading(self, session: str) -> None:
        """Stop the tab's pending navigation (best effort, within a second)."""
        with contextlib.suppress(CdpError, TimeoutError):
            await asyncio.wait_for(self.cdp.send("Page.stopLoading", session=session), STOP_TIMEOUT)

    async def wait_for_load(self, session: str, loader: str, timeout: float) -> bool:
        """Whether the navigation ``loader`` reached its load event within ``timeout``."""
        future = self._load(session, loader)
        closed: asyncio.Future[Any] = asyncio.ensure_future(self.cdp.closed.wait())
        try:
            done, _ = await asyncio.wait(
                {future, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closed.cancel()
            self._loads.pop((session, loader), None)
        if future in done:
            return True
        if closed in done:
            raise ConnectionClosed("the browser exited while the page loaded")
        return False

    async def context(self, tab: TabState) -> dict[str, Any]:
        values = await self.evaluate(await self.session(tab), CONTEXT_SCRIPT)
        values = values if isinstance(values, dict) else {"url": tab.url, "title": tab.title}
        if str(values.get("url", "")).startswith("chrome-error:"):
            values["url"] = tab.url  # an error page: the URL that failed, as the address bar shows
        return {**values, "tab_id": tab.id, "is_main_tab": tab.id == self.main_tab}

    # -- tabs ------------------------------------------------------------------------------------
    async def open_tab(self) -> TabState:
        target = str((await self.cdp.send("Target.createTarget", {"url": "about:blank"}))["targetId"])
        if target not in self.tabs:  # its targetCreated event may come after the reply
            self.tabs[target] = TabState(target, "about:blank", "", next(self._order))
        self.current = target
        return self.tabs[target]

    async def switch(self, tab: TabState) -> None:
        await self.cdp.send("Target.activateTarget", {"targetId": tab.id})
        self.current = tab.id

    async def close_tab(self, tab: TabState) -> None:
        if len(self.tabs) == 1:
            raise LastTab(
                "this is the browser's last tab: closing it would close the browser (open another first)",
                details={"tab_id": tab.id},
            )
        await self.cdp.send("Target.closeTarget", {"targetId": tab.id})
        self._gone(tab.id)

    async def close(self, timeout: float = 5.0) -> None:
        """Ask Chromium to quit, then close the pipes; killed if it has not exited in ``timeout``."""
        with contextlib.suppress(ConnectionClosed, CdpError, TimeoutError):  # it may be gone already
            await asyncio.wait_for(self.cdp.send("Browser.close"), timeout / 2)
        self.cdp.close()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.process.process.wait, timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.process.process.kill()
            await loop.run_in_executor(None, self.process.process.wait)
