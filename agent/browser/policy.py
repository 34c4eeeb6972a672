"""What the browser may be asked to open, and how its exit is told: pure functions.

URLs: http(s), about: and data: always; javascript:, file:, chrome: (and view-source:, devtools:,
chrome-extension:) only with ``--browser-allow-unsafe-urls`` (a page the agent opens runs with
the desktop user's files and the browser's own settings within reach); anything else is a 400.
"""

from __future__ import annotations

import contextlib
import re
import signal
import urllib.parse

from agent.errors import InvalidArgument, UrlSchemeNotAllowed

SAFE_SCHEMES = frozenset({"http", "https", "about", "data"})
UNSAFE_SCHEMES = frozenset({"javascript", "file", "chrome", "view-source", "devtools", "chrome-extension"})
PROXY_SCHEMES = frozenset({"http", "https", "socks4", "socks5"})
# Chromium's --proxy-server is a rule list: ";" separates rules, "=" and "," build them.
PROXY_FORBIDDEN = re.compile(r"[;=,\s]")


def check_url(url: str, allow_unsafe: bool) -> str:
    """``url`` if the browser may open it: 400 for a relative or unknown-scheme URL, 403 for a
    javascript:/file:/chrome: one unless --browser-allow-unsafe-urls."""
    try:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
    except ValueError as exc:
        raise InvalidArgument(f"url: not a URL ({exc})", details={"field": "url"}) from None
    if scheme in ("http", "https") and not parts.hostname:
        raise InvalidArgument(f"url: {url!r} names no host", details={"field": "url"})
    if scheme in SAFE_SCHEMES or (scheme in UNSAFE_SCHEMES and allow_unsafe):
        return url
    if scheme in UNSAFE_SCHEMES:
        raise UrlSchemeNotAllowed(
            f"url: {scheme}: URLs are not opened by this agent (--browser-allow-unsafe-urls true allows them)",
            details={"field": "url", "scheme": scheme, "option": "browser_allow_unsafe_urls"},
        )
    raise InvalidArgument(
        f"url: {'scheme ' + repr(scheme) if scheme else 'no scheme'}; give an absolute http(s), about: or data: URL",
        details={"field": "url"},
    )


def check_proxy(proxy_url: str | None) -> str | None:
    if proxy_url is None or proxy_url.strip() == "":
        return None
    try:
        parts = urllib.parse.urlsplit(proxy_url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(f"proxy_url: {exc}", details={"field": "proxy_url"}) from None
    if (
        parts.scheme.lower() not in PROXY_SCHEMES
        or not parts.hostname
        or not port
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "?" in proxy_url
        or "#" in proxy_url
        or PROXY_FORBIDDEN.search(parts.netloc)
    ):
        raise InvalidArgument(
            "proxy_url: give scheme://host:port (port 1-65535, nothing else) with scheme http, https, "
            "socks4 or socks5",
            details={"field": "proxy_url"},
        )
    if parts.username or parts.password:
        raise InvalidArgument(
            "proxy_url: Chromium takes no credentials in the proxy URL", details={"field": "proxy_url"}
        )
    return f"{parts.scheme.lower()}://{parts.netloc}"


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return "was closed (exit code 0)" if code == 0 else f"exited with code {code}"
