"""Request and result models of the browser operations (``/browser/*``).

Field and action names follow seed 002: ``go_to_url`` (``url``), ``get_html_content``
(``auto_detect_encoding``, ``base64``), ``set_viewport`` (``width``, ``height``,
``scale_factor``), ``list_tabs``, ``new_tab``, ``switch_tab``, ``close_tab`` (``tab_id``),
``change_proxy`` (``proxy_url``) and ``page_context`` in an action's result.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.models.base import Request, Result

MiB = 1024 * 1024
MAX_HTML_BYTES = 64 * MiB

_TAB_ID = Field(
    min_length=1,
    max_length=64,
    description="A tab's id as listed by GET /browser/tabs (Chromium's target id)",
    examples=["63579D81DBD50013273A908695A79F96"],
)
_OPTIONAL_TAB = Field(
    default=None, min_length=1, max_length=64, description="The tab to act on (default: the current tab)"
)
_URL = Field(
    min_length=1,
    max_length=2 * MiB,
    description="http(s), about: or data: URL",
    examples=["https://example.com/"],
)
_TIMEOUT = Field(default=30.0, gt=0, le=300, description="Seconds to wait for the page's load event")


class PageContext(Result):
    """Where the browser's tab is: seed 002's ``page_context``."""

    tab_id: str
    url: str
    title: str
    is_main_tab: bool = Field(description="The tab is the browser's oldest open tab")
    scroll_x: float
    scroll_y: float
    viewport_width: float = Field(description="window.innerWidth, CSS pixels")
    viewport_height: float = Field(description="window.innerHeight, CSS pixels")
    page_width: float = Field(description="The document's scroll width, CSS pixels")
    page_height: float = Field(description="The document's scroll height, CSS pixels")
    device_scale_factor: float = Field(description="window.devicePixelRatio")


class BrowserStatusRequest(Request):
    type: Literal["browser_status"] = "browser_status"


class LaunchBrowserRequest(Request):
    type: Literal["launch_browser"] = "launch_browser"


class BrowserStatus(Result):
    attached: bool = Field(description="A browser runs and the agent holds its debugging pipe")
    pid: int | None = None
    version: str | None = Field(default=None, description="Chromium's product string")
    current_tab_id: str | None = None
    tabs: int = Field(default=0, description="Open tabs")
    proxy_url: str | None = Field(default=None, description="The proxy the browser uses (or will at launch)")
    profile_dir: str | None = None
    last_exit: str | None = Field(
        default=None, description="How the previous browser ended, when it ended without the agent's asking"
    )


class BrowserLaunched(BrowserStatus):
    launched: bool = Field(description="True: started now; false: the running one was reused")


class NavigateRequest(Request):
    type: Literal["go_to_url"] = "go_to_url"
    url: str = _URL
    tab_id: str | None = _OPTIONAL_TAB
    timeout: float = _TIMEOUT


class Navigated(Result):
    tab_id: str
    url: str = Field(description="The final URL (after redirects)")
    status: int | None = Field(description="The main document's HTTP status (null: none, e.g. about:blank)")
    title: str
    loaded: bool = Field(description="The load event came before the timeout")
    error: str | None = Field(
        default=None, description="Chromium's network error, e.g. net::ERR_CONNECTION_REFUSED"
    )


class HtmlRequest(Request):
    type: Literal["get_html_content"] = "get_html_content"
    tab_id: str | None = _OPTIONAL_TAB
    auto_detect_encoding: bool = Field(
        default=False,
        description="The HTML as the server sent it, decoded with the encoding Chromium detected "
        "(default: the live DOM, serialised)",
    )
    base64: bool = Field(default=False, description="html is the base64 of its UTF-8 bytes")
    max_bytes: int = Field(
        default=16 * MiB,
        gt=0,
        le=MAX_HTML_BYTES,
        description="UTF-8 bytes kept; longer HTML is cut (truncated)",
    )


class Html(Result):
    tab_id: str
    url: str
    html: str
    encoding: str = Field(description="The document's character set as Chromium detected it")
    base64: bool
    size: int = Field(description="UTF-8 bytes of the whole HTML")
    truncated: bool


class ViewportRequest(Request):
    type: Literal["set_viewport"] = "set_viewport"
    width: int = Field(ge=1, le=10_000, description="CSS pixels")
    height: int = Field(ge=1, le=10_000, description="CSS pixels")
    scale_factor: float | None = Field(
        default=None, gt=0, le=10, description="Device scale factor (default: the screen's)"
    )
    tab_id: str | None = _OPTIONAL_TAB


class ListTabsRequest(Request):
    type: Literal["list_tabs"] = "list_tabs"


class Tab(Result):
    tab_id: str
    url: str
    title: str
    current: bool = Field(description="The tab actions go to when they name none")
    is_main_tab: bool


class Tabs(Result):
    tabs: list[Tab]
    current_tab_id: str | None


class NewTabRequest(Request):
    type: Literal["new_tab"] = "new_tab"
    url: str | None = Field(
        default=None, min_length=1, max_length=2 * MiB, description="Load this URL (default: about:blank)"
    )
    timeout: float = _TIMEOUT


class NewTab(Result):
    tab_id: str
    url: str
    title: str
    status: int | None = None
    loaded: bool


class SwitchTabRequest(Request):
    type: Literal["switch_tab"] = "switch_tab"
    tab_id: str = _TAB_ID


class CloseTabRequest(Request):
    type: Literal["close_tab"] = "close_tab"
    tab_id: str = _TAB_ID


class TabClosed(Result):
    tab_id: str
    current_tab_id: str | None


class ProxyRequest(Request):
    type: Literal["change_proxy"] = "change_proxy"
    proxy_url: str | None = Field(
        default=None,
        max_length=2048,
        description="http://, https://, socks4:// or socks5:// host:port; null or absent: no proxy",
        examples=["http://127.0.0.1:3128"],
    )


class ProxyChanged(Result):
    proxy_url: str | None = Field(description="The proxy now in effect (null: direct connections)")
    relaunched: bool = Field(
        description="The browser was restarted to apply it (tabs reopened at their URLs)"
    )
    attached: bool
