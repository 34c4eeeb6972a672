"""Browser operations: a Chromium on the desktop driven over CDP (``/browser/*``, seed 002's
``go_to_url``, ``get_html_content``, ``set_viewport``, tabs and ``change_proxy``).

Every operation needs the ``browser`` capability (``--browser false``: 403 BROWSER_DISABLED).
``include_context`` on any action is handled once, in the registry (``agent.actions.context``).
"""

from __future__ import annotations

from typing import Any

from agent.actions.capabilities import Capability
from agent.actions.registry import BULK_BODY, REGISTRY
from agent.browser.policy import check_url
from agent.browser.service import BrowserService
from agent.browser.tabs import RunningBrowser
from agent.errors import Unavailable
from agent.models.base import Request
from agent.models.browser import (
    BrowserLaunched,
    BrowserStatus,
    BrowserStatusRequest,
    CloseTabRequest,
    Html,
    HtmlRequest,
    LaunchBrowserRequest,
    ListTabsRequest,
    Navigated,
    NavigateRequest,
    NewTab,
    NewTabRequest,
    PageContext,
    ProxyChanged,
    ProxyRequest,
    SwitchTabRequest,
    Tab,
    TabClosed,
    Tabs,
    ViewportRequest,
)
from agent.services import Services

BROWSER_ERRORS = (400, 401, 403, 404, 409, 503, 504)


def _service(services: Services) -> BrowserService:
    if services.browser is None:
        raise Unavailable("the browser is not available in this agent")
    return services.browser


def _status(service: BrowserService) -> BrowserStatus:
    browser = service.running
    return BrowserStatus(
        attached=browser is not None,
        pid=browser.process.pid if browser is not None else None,
        version=browser.version if browser is not None else None,
        current_tab_id=browser.current if browser is not None else None,
        tabs=len(browser.tabs) if browser is not None else 0,
        proxy_url=service.proxy_url,
        profile_dir=service.profile,
        last_exit=service.last_exit,
    )


async def browser_status(services: Services, req: BrowserStatusRequest) -> BrowserStatus:
    return _status(_service(services))


async def launch_browser(services: Services, req: LaunchBrowserRequest) -> BrowserLaunched:
    service = _service(services)
    _, launched = await service.launch()
    return BrowserLaunched(**_status(service).model_dump(), launched=launched)


async def go_to_url(services: Services, req: NavigateRequest) -> Navigated:
    service = _service(services)
    return Navigated(
        **await service.run(lambda browser: service.navigate(browser, req.tab_id, req.url, req.timeout))
    )


async def get_html_content(services: Services, req: HtmlRequest) -> Html:
    service = _service(services)
    return Html(
        **await service.run(
            lambda browser: service.html(
                browser,
                req.tab_id,
                as_sent=req.auto_detect_encoding,
                encode=req.base64,
                limit=req.max_bytes,
            )
        )
    )


async def set_viewport(services: Services, req: ViewportRequest) -> PageContext:
    service = _service(services)
    return PageContext(
        **await service.run(
            lambda browser: service.set_viewport(browser, req.tab_id, req.width, req.height, req.scale_factor)
        )
    )


async def list_tabs(services: Services, req: ListTabsRequest) -> Tabs:
    async def listed(browser: RunningBrowser) -> Tabs:
        await browser.refresh()
        current = (await browser.resolve(None)).id if browser.tabs else None
        main = browser.main_tab
        ordered = sorted(browser.tabs.values(), key=lambda tab: tab.order)
        return Tabs(
            tabs=[
                Tab(tab_id=t.id, url=t.url, title=t.title, current=t.id == current, is_main_tab=t.id == main)
                for t in ordered
            ],
            current_tab_id=current,
        )

    return await _service(services).run(listed)


async def new_tab(services: Services, req: NewTabRequest) -> NewTab:
    service = _service(services)
    if req.url is not None:
        check_url(req.url, service.allow_unsafe_urls)

    async def opened(browser: RunningBrowser) -> NewTab:
        tab = await browser.open_tab()
        if req.url is None:
            return NewTab(tab_id=tab.id, url="about:blank", title="", status=None, loaded=True)
        done = await service.navigate(browser, tab.id, req.url, req.timeout)
        return NewTab(
            tab_id=tab.id, url=done["url"], title=done["title"], status=done["status"], loaded=done["loaded"]
        )

    return await service.run(opened)


async def switch_tab(services: Services, req: SwitchTabRequest) -> Tab:
    async def switched(browser: RunningBrowser) -> Tab:
        tab = browser.tab(req.tab_id)
        await browser.switch(tab)
        await browser.refresh()
        return Tab(
            tab_id=tab.id, url=tab.url, title=tab.title, current=True, is_main_tab=tab.id == browser.main_tab
        )

    return await _service(services).run(switched)


async def close_tab(services: Services, req: CloseTabRequest) -> TabClosed:
    async def closed(browser: RunningBrowser) -> TabClosed:
        await browser.close_tab(browser.tab(req.tab_id))
        return TabClosed(tab_id=req.tab_id, current_tab_id=browser.tab(None).id if browser.tabs else None)

    return await _service(services).run(closed)


async def change_proxy(services: Services, req: ProxyRequest) -> ProxyChanged:
    in_effect, relaunched, attached = await _service(services).set_proxy(req.proxy_url)
    return ProxyChanged(proxy_url=in_effect, relaunched=relaunched, attached=attached)


def _add(type: str, model: type[Request], handler: Any, route: str, **declaration: Any) -> None:
    REGISTRY.add(
        type,
        model,
        handler,
        route=route,
        tag="browser",
        capability=Capability.BROWSER,
        errors=BROWSER_ERRORS,
        **declaration,
    )


_add(
    "browser_status",
    BrowserStatusRequest,
    browser_status,
    "/browser",
    method="GET",
    result=BrowserStatus,
    summary="Whether a browser is attached: pid, version, tabs, proxy, how the last one ended",
)
_add(
    "launch_browser",
    LaunchBrowserRequest,
    launch_browser,
    "/browser/launch",
    result=BrowserLaunched,
    summary="Start Chromium on the desktop (as the desktop user, debugging over a pipe), or reuse the running one",
)
_add(
    "go_to_url",
    NavigateRequest,
    go_to_url,
    "/browser/navigate",
    result=Navigated,
    max_body=BULK_BODY,
    summary="Load a URL in the current (or a given) tab and wait for its load event; final URL, status, title",
)
_add(
    "get_html_content",
    HtmlRequest,
    get_html_content,
    "/browser/html",
    result=Html,
    summary="The current (or a given) tab's HTML: the live DOM, or as sent (auto_detect_encoding); base64; capped",
)
_add(
    "set_viewport",
    ViewportRequest,
    set_viewport,
    "/browser/viewport",
    result=PageContext,
    summary="Emulate a viewport (width, height, scale_factor) in the current (or a given) tab; its page context after",
)
_add(
    "list_tabs",
    ListTabsRequest,
    list_tabs,
    "/browser/tabs",
    method="GET",
    result=Tabs,
    summary="The browser's open tabs (ids, URLs, titles) and the current one",
)
_add(
    "new_tab",
    NewTabRequest,
    new_tab,
    "/browser/tabs",
    result=NewTab,
    max_body=BULK_BODY,
    summary="Open a tab (optionally loading a URL) and make it current",
)
_add(
    "switch_tab",
    SwitchTabRequest,
    switch_tab,
    "/browser/tabs/{tab_id}/switch",
    result=Tab,
    summary="Bring a tab to the front and make it current",
)
_add(
    "close_tab",
    CloseTabRequest,
    close_tab,
    "/browser/tabs/{tab_id}",
    method="DELETE",
    result=TabClosed,
    summary="Close a tab (not the last one: that would close the browser)",
)
_add(
    "change_proxy",
    ProxyRequest,
    change_proxy,
    "/browser/proxy",
    result=ProxyChanged,
    summary="Use a proxy for the browser's connections (null: none); restarts the browser when it runs",
)
