"""The browser service: one Chromium on the desktop, started on first use, driven over CDP.

Lifecycle: the first operation (or ``POST /browser/launch``) starts Chromium; later ones reuse
it. When it ends without the agent asking (a crash, ``kill -9``, the user closing its window),
the next operation is answered 503 BROWSER_CLOSED saying how it ended (its tabs are gone, so a
tab id the caller holds means nothing any more), and the one after starts a new browser. The
proxy is a command-line switch of Chromium: changing it restarts the browser, reopening its tabs.
Nothing here knows HTTP: operations return plain values and raise ``agent.errors``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agent.browser.cdp import CdpConnection, CdpError, ConnectionClosed
from agent.browser.policy import check_proxy, check_url, describe_exit
from agent.browser.process import profile_dir, spawn
from agent.browser.tabs import RunningBrowser
from agent.errors import AgentError, BrowserClosed, BrowserRefused, DeadlineExceeded, TabNotFound
from agent.session.launch_scope import ScopeMover
from agent.session.user import DesktopUser

LOG = logging.getLogger(__name__)

T = TypeVar("T")
START_TIMEOUT = 30.0
# Chromium's own name for a request that got no answer in time: the navigation was stopped.
NO_ANSWER = "net::ERR_TIMED_OUT"
LONE_SURROGATE = re.compile("[\ud800-\udfff]")

HTML_SCRIPT = """(() => {
  const doctype = document.doctype ? new XMLSerializer().serializeToString(document.doctype) + "\\n" : "";
  const root = document.documentElement;
  return {html: doctype + (root ? root.outerHTML : ""), url: location.href, encoding: document.characterSet};
})()"""
# Waits for the new page's second frame (when it is on screen), so a click that follows lands on it;
# at most a second (a window the compositor does not draw gets no frames).
NAVIGATED_SCRIPT = """(async () => {
  if (document.visibilityState === "visible") {
    await Promise.race([
      new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve))),
      new Promise(resolve => setTimeout(resolve, 1000)),
    ]);
  }
  const entry = performance.getEntriesByType("navigation")[0];
  return {url: location.href, title: document.title, status: entry ? entry.responseStatus || null : null};
})()"""


@dataclass
class Ended:
    how: str = "exited"
    reported: bool = False
    known: asyncio.Event = field(default_factory=asyncio.Event)  # set once its exit status is read


class BrowserService:
    def __init__(
        self,
        user: DesktopUser,
        display: str,
        *,
        allow_unsafe_urls: bool = False,
        scope: ScopeMover | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self._user = user
        self._display = display
        self.allow_unsafe_urls = allow_unsafe_urls
        self._scope = scope
        self._base_env = base_env
        self.proxy_url: str | None = None
        self._browser: RunningBrowser | None = None
        self._ended: Ended | None = None
        self._lock = asyncio.Lock()
        self._reapers: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def running(self) -> RunningBrowser | None:
        browser = self._browser
        return browser if browser is not None and browser.alive else None

    @property
    def profile(self) -> str:
        return str(profile_dir(self._user, self._display, self._base_env))

    @property
    def last_exit(self) -> str | None:
        """How the last browser ended unasked (None while its exit status is being read)."""
        ended = self._ended
        return ended.how if ended is not None and ended.known.is_set() else None

    async def launch(self) -> tuple[RunningBrowser, bool]:
        """The running browser, or a new one (True) if none runs."""
        async with self._lock:
            browser = self.running
            if browser is not None:
                return browser, False
            return await self._start(), True

    async def ensure(self) -> RunningBrowser:
        """The browser for an operation: the running one, else a new one, except right after an
        unasked exit, which the first operation after it reports (503)."""
        async with self._lock:
            browser = self.running
            if browser is not None:
                return browser
            if self._ended is not None and not self._ended.reported:
                self._ended.reported = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ended.known.wait(), 5.0)
                raise BrowserClosed(
                    f"the browser {self._ended.how}; its tabs are gone (the next call starts a new browser)",
                    details={"last_exit": self._ended.how},
                )
            return await self._start()

    async def _start(self) -> RunningBrowser:
        loop = asyncio.get_running_loop()
        process = await loop.run_in_executor(
            None, spawn, self._user, self._display, self.proxy_url, self._base_env
        )
        try:
            cdp = await CdpConnection.open(process.read_fd, process.write_fd)
            browser = RunningBrowser(process, cdp)
            await asyncio.wait_for(browser.start(), START_TIMEOUT)
        except (ConnectionClosed, TimeoutError, CdpError) as exc:
            with contextlib.suppress(ProcessLookupError):
                process.process.kill()
            await loop.run_in_executor(None, process.process.wait)
            raise BrowserClosed(
                f"Chromium did not start: {describe_exit(process.process.returncode)} ({exc})"
            ) from None
        if self._scope is not None:
            await self._scope.move("chromium", [process.pid])
        browser.on_closed = self._closed
        self._browser = browser
        self._ended = None
        return browser

    def _closed(self, browser: RunningBrowser) -> None:
        """The pipe ended: the browser is gone; note how once its exit status is known."""
        if browser is not self._browser:
            return  # one the agent closed itself
        self._browser = None
        ended = self._ended = Ended()

        async def reap() -> None:
            code = await asyncio.get_running_loop().run_in_executor(None, _wait, browser)
            ended.how = describe_exit(code)
            ended.known.set()
            LOG.warning("the browser (pid %d) %s", browser.process.pid, ended.how)

        task = asyncio.ensure_future(reap())
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    async def _stop(self, browser: RunningBrowser) -> None:
        if self._browser is browser:
            self._browser = None
        await browser.close()

    async def close(self) -> None:
        """The agent is stopping: the browser goes with it (its pipe would close anyway)."""
        browser = self._browser
        if browser is not None:
            await self._stop(browser)
        for task in list(self._reapers):
            task.cancel()

    async def run(self, operation: Callable[[RunningBrowser], Awaitable[T]]) -> T:
        """``operation`` on the browser (started if needed), with CDP failures made agent errors."""
        browser = await self.ensure()
        try:
            return await operation(browser)
        except ConnectionClosed:
            ended = self._ended
            if ended is not None:
                ended.reported = True
            raise BrowserClosed(
                "the browser exited during the operation; its tabs are gone (the next call starts a new browser)"
            ) from None
        except TimeoutError:  # a browser-side command with its own cap (the page has its own message)
            raise DeadlineExceeded(
                "Chromium did not answer within its cap (10s); it may be overloaded"
            ) from None
        except CdpError as exc:
            if "No target with given id" in exc.text or "No session with given id" in exc.text:
                raise TabNotFound(f"the tab closed during the operation ({exc})") from None
            raise BrowserRefused(str(exc), details={"method": exc.method, "cdp_code": exc.code}) from None

    async def page_context(self, tab_id: str | None) -> dict[str, Any] | None:
        """The named tab's (else the current tab's) context; None when no browser runs or the
        page does not answer (never starts a browser: asking for context is not asking for one)."""
        browser = self.running
        if browser is None or not browser.tabs:
            return None
        try:
            return await browser.context(await browser.resolve(tab_id if tab_id in browser.tabs else None))
        except (ConnectionClosed, CdpError, AgentError) as exc:
            LOG.debug("no page context: %s", exc)
            return None

    # -- operations ------------------------------------------------------------------------------
    async def navigate(
        self, browser: RunningBrowser, tab_id: str | None, url: str, timeout: float
    ) -> dict[str, Any]:
        check_url(url, self.allow_unsafe_urls)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        tab = await browser.resolve(tab_id)
        session = await browser.session(tab)
        # Chromium answers Page.navigate once the server's answer arrives (or the request fails):
        # a server that never answers would hold it for minutes, so the timeout bounds it too.
        try:
            reply = await asyncio.wait_for(
                browser.cdp.send("Page.navigate", {"url": url}, session=session), timeout
            )
        except TimeoutError:
            await browser.stop_loading(session)  # the tab answers again, on the page it was on
            reply = {"errorText": NO_ANSWER}
        error = reply.get("errorText") or None
        if url.lower().startswith("javascript:") and error == "net::ERR_ABORTED":
            error = None  # a script URL runs in the page: there is no navigation to abort
        loader = reply.get("loaderId")
        loaded = error is None
        if loader and not error:
            loaded = await browser.wait_for_load(session, str(loader), max(0.0, deadline - loop.time()))
        if error == NO_ANSWER:  # nothing new to read: the tab shows the page it showed before
            return {
                "tab_id": tab.id,
                "url": url,
                "status": None,
                "title": "",
                "loaded": False,
                "error": error,
            }
        info = await browser.evaluate(session, NAVIGATED_SCRIPT, wait=True) or {}
        final = str(info.get("url") or url)
        if error:
            final = url if final.startswith("chrome-error:") else final
        # Only an HTTP answer has a status (Chromium reports 200 for a data: or about: page).
        status = info.get("status") if not error and final.lower().startswith(("http:", "https:")) else None
        return {
            "tab_id": tab.id,
            "url": final,
            "status": status,
            "title": str(info.get("title") or ""),
            "loaded": loaded,
            "error": error,
        }

    async def html(
        self, browser: RunningBrowser, tab_id: str | None, *, as_sent: bool, encode: bool, limit: int
    ) -> dict[str, Any]:
        tab = await browser.resolve(tab_id)
        session = await browser.session(tab)
        page = await browser.evaluate(session, HTML_SCRIPT) or {}
        text = str(page.get("html", ""))
        if as_sent:
            text = await self._as_sent(browser, session, str(page.get("encoding") or "utf-8")) or text
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a script can put one in the DOM)
            text = LONE_SURROGATE.sub("\ufffd", text)
            data = text.encode("utf-8")
        kept = data[:limit]
        if len(kept) < len(data) and not encode:
            kept = kept.decode("utf-8", "ignore").encode("utf-8")  # never cut a character in two
        if encode:
            html = base64.b64encode(kept).decode("ascii")
        else:
            html = text if len(kept) == len(data) else kept.decode("utf-8", "replace")
        return {
            "tab_id": tab.id,
            "url": str(page.get("url", tab.url)),
            "html": html,
            "encoding": str(page.get("encoding") or "UTF-8"),
            "base64": encode,
            "size": len(data),
            "truncated": len(kept) < len(data),
        }

    @staticmethod
    async def _as_sent(browser: RunningBrowser, session: str, encoding: str) -> str | None:
        """The main document as the server sent it, decoded with the encoding Chromium detected."""
        frame = (await browser.cdp.send("Page.getFrameTree", session=session))["frameTree"]["frame"]
        try:
            reply = await browser.cdp.send(
                "Page.getResourceContent", {"frameId": frame["id"], "url": frame["url"]}, session=session
            )
        except CdpError:  # about:blank, a data: URL or an error page: there is no resource
            return None
        content = str(reply.get("content", ""))
        if not reply.get("base64Encoded"):
            return content
        try:
            return base64.b64decode(content).decode(encoding, "replace")
        except LookupError:
            return base64.b64decode(content).decode("utf-8", "replace")

    async def set_viewport(
        self, browser: RunningBrowser, tab_id: str | None, width: int, height: int, scale: float | None
    ) -> dict[str, Any]:
        tab = await browser.resolve(tab_id)
        session = await browser.session(tab)
        await browser.cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": scale or 0, "mobile": False},
            session=session,
        )
        context = await browser.context(tab)
        for _ in range(40):  # the page sees the new size at its next frame
            if context.get("viewport_width") == width and context.get("viewport_height") == height:
                break
            await asyncio.sleep(0.05)
            context = await browser.context(tab)
        return context

    async def set_proxy(self, proxy_url: str | None) -> tuple[str | None, bool, bool]:
        """Use ``proxy_url`` from now on: (in effect, relaunched, attached)."""
        wanted = check_proxy(proxy_url)
        async with self._lock:
            browser = self.running
            if wanted == self.proxy_url or browser is None:
                self.proxy_url = wanted
                return wanted, False, browser is not None
            tabs = sorted(browser.tabs.values(), key=lambda tab: tab.order)
            urls = [
                tab.url
                for tab in tabs
                if tab.url and not tab.url.startswith(("chrome-error:", "about:blank"))
            ]
            await self._stop(browser)
            self.proxy_url = wanted
            fresh = await self._start()
            await _reopen(fresh, urls)
            return wanted, True, True


async def _reopen(browser: RunningBrowser, urls: list[str]) -> None:
    """The previous browser's tabs, at their URLs (best effort: not waiting for them to load)."""
    for index, url in enumerate(urls):
        try:
            tab = browser.tab(None) if index == 0 else await browser.open_tab()
            await browser.cdp.send("Page.navigate", {"url": url}, session=await browser.session(tab))
        except (CdpError, TabNotFound) as exc:
            LOG.warning("could not reopen %s after the restart: %s", url, exc)


def _wait(browser: RunningBrowser) -> int | None:
    try:
        return browser.process.process.wait(10)
    except subprocess.TimeoutExpired:
        return None
