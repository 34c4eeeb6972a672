"""What keeps a web page in the desktop's browser from driving the agent.

A page can make the browser send requests to the agent (the agent listens on the VM's loopback,
the browser runs in the VM). Two kinds are possible without the agent's consent:

* a cross-site "simple request" (a form, ``fetch`` with ``no-cors``, ``sendBeacon``): a GET, HEAD
  or POST whose body is ``text/plain``, a form, multipart or typeless, with an ``Origin`` header
  naming the page's site;
* a DNS-rebinding request: the page's own host name re-resolved to 127.0.0.1, so the browser
  sends ``Host: evil.example:PORT`` and treats the answer as same-origin (readable).

So every request, on every route and in every auth mode, must name an allowed host in ``Host``
and (when present) ``Origin``, and a request that carries a body must declare the one type a
page cannot send without a CORS preflight (which the agent never answers): ``application/json``,
or ``application/octet-stream`` for uploads. GET and HEAD routes change nothing.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from agent.config import Config
from agent.errors import HostNotAllowed, UnsupportedMediaType

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"
# The body type each method's routes take: every POST route reads a JSON object, and the one PUT
# route (PUT /files) raw bytes. Other methods carry no body (and DELETE is never a simple request).
BODY_TYPES = {"POST": JSON, "PUT": OCTET_STREAM}
# Methods a page can only send after a CORS preflight, so no Content-Type at all is safe
# (``curl -T file`` sends none). A typeless POST is a simple request (fetch with a Blob body).
TYPELESS_ALLOWED = frozenset({"PUT"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # listening on every address names no host
# Fetch Metadata: a request a page of another origin made the browser send ("none" is the user's
# own navigation, "same-origin" the agent's own pages, such as the viewer).
CROSS_ORIGIN_FETCHES = frozenset({"cross-site", "same-site"})


class AllowedHosts:
    """The host names a request may name in ``Host`` and ``Origin``."""

    def __init__(self, config: Config) -> None:
        names = {"localhost"}
        if config.host not in WILDCARD_HOSTS:
            names.add(_normalise(config.host))
        if config.advertise_url:
            advertised = urlsplit(config.advertise_url).hostname
            if advertised:
                names.add(_normalise(advertised))
        self.any = "*" in config.allowed_hosts
        self.names = frozenset(names | {h for h in config.allowed_hosts if not h.startswith(".")})
        self.suffixes = tuple(h for h in config.allowed_hosts if h.startswith("."))

    def allows(self, name: str, *, any_ip: bool) -> bool:
        """Whether ``name`` (a bare host name or address) may be named.

        ``any_ip``: an IP literal in ``Host`` is safe (DNS rebinding needs the page's own *name*);
        in ``Origin`` only loopback addresses are, as any other is a web site of its own.
        """
        if self.any:
            return True
        name = _normalise(name)
        if name in self.names or name.endswith(".localhost"):
            return True
        if any(name.endswith(suffix) for suffix in self.suffixes):
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        return any_ip or address.is_loopback


ALLOWED_HOSTS_KEY = web.AppKey("allowed_hosts", AllowedHosts)


def _normalise(host: str) -> str:
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def _hostname(url: str) -> str | None:
    """The host name of a URL or of a ``Host`` value (prefixed ``//``); None if there is none."""
    try:
        return urlsplit(url).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


@web.middleware
async def host_and_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse requests that name a host the agent does not answer for (before auth)."""
    allowed: AllowedHosts = request.app[ALLOWED_HOSTS_KEY]
    host = request.headers.get(hdrs.HOST)
    if host is not None:  # a browser always sends Host; only a non-browser client can leave it out
        name = _hostname("//" + host)
        if name is None or not allowed.allows(name, any_ip=True):
            raise HostNotAllowed(
                f"Host {host!r} is not a name this agent answers for (a DNS-rebinding web page?); "
                "add it to allowed_hosts if the control plane uses it",
                details={"header": "Host"},  # the allowed names are not told to a rebinding page
            )
    origin = request.headers.get(hdrs.ORIGIN)
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    if origin is None and fetch_site in CROSS_ORIGIN_FETCHES and not allowed.any:
        # An <img>, <iframe> or no-cors GET from another page carries no Origin, but the browser
        # says where it comes from: a ticket leaked to a page must not stream the desktop to it.
        raise HostNotAllowed(
            "requests from other web pages are refused (Sec-Fetch-Site: "
            f"{fetch_site}); open the agent's own pages, or list the page's host in allowed_hosts",
            details={"header": "Sec-Fetch-Site"},
        )
    if origin is not None:
        origin_host = _hostname(origin)  # "null" (a file: page, a sandbox) has none: refused
        web_page = origin.lower().startswith(("http://", "https://"))  # not an extension's page
        if origin_host is None or not web_page or not allowed.allows(origin_host, any_ip=False):
            raise HostNotAllowed(
                f"requests from web pages are refused: Origin {origin[:200]!r} is not an allowed host",
                details={"header": "Origin"},
            )
    return await handler(request)


@web.middleware
async def body_type(request: web.Request, handler: Handler) -> web.StreamResponse:
    """415 unless a request to a route that takes a body declares that body's one type.

    Checked with or without a body: a bodiless, typeless POST is a CORS simple request as well.
    Types are compared without parameters (``application/json; charset=utf-8`` is JSON).
    """
    expected = BODY_TYPES.get(request.method)
    if expected is not None and request.match_info.http_exception is None:
        declared = request.headers.get(hdrs.CONTENT_TYPE)
        if declared is None and request.method in TYPELESS_ALLOWED:
            return await handler(request)
        if declared is None or request.content_type != expected:
            got = "no Content-Type" if declared is None else f"Content-Type {declared[:100]!r}"
            raise UnsupportedMediaType(
                f"{request.method} {request.path} takes Content-Type: {expected}; got {got}"
                + (" (curl: use --json, or -H 'Content-Type: application/json')" if expected == JSON else ""),
                details={"expected": expected},
            )
    return await handler(request)


def install(app: web.Application, config: Config) -> None:
    app[ALLOWED_HOSTS_KEY] = AllowedHosts(config)
