"""Where a wallpaper's bytes come from: an http(s), file or data URL, at most so many bytes.

Nothing is read with the agent's own rights on the caller's behalf: a ``file`` URL is read by
the files service (as the desktop user, within the allowed roots); ``http(s)`` URLs are fetched
only when ``--wallpaper-fetch-urls`` allows it, and then never from a loopback, link-local,
unspecified or multicast address (each address is checked after resolution and connected to as
checked, redirects one by one), so the route cannot probe the VM's own services. Imported with
the first wallpaper (aiohttp's client with it), not by the idle agent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
import urllib.parse
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from agent.errors import (
    Conflict,
    DeadlineExceeded,
    FilesDisabled,
    InvalidArgument,
    PayloadTooLarge,
    UrlFetchDisabled,
)

MAX_REDIRECTS = 5

# Reads a file for the caller (path, most bytes): the files service, as the desktop user.
FileReader = Callable[[str, int], Awaitable[bytes]]


async def fetch(
    url: str, *, max_bytes: int, timeout: float, read_file: FileReader | None = None, fetch_urls: bool = False
) -> bytes:
    """The bytes behind an http(s), file or data URL, at most ``max_bytes`` of them."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        if not fetch_urls:
            raise UrlFetchDisabled(
                "url: fetching http(s) wallpaper URLs is off on this agent (--wallpaper-fetch-urls); "
                "send the image as a data URL",
                details={"field": "url", "option": "wallpaper_fetch_urls"},
            )
        try:
            return await asyncio.wait_for(_fetch_http(url, max_bytes, timeout), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"url: no complete answer within {timeout:g}s") from None
    if scheme == "file":
        if read_file is None:
            raise FilesDisabled(
                "url: file URLs are refused because the files API is disabled on this agent (--exec false)",
                details={"field": "url"},
            )
        try:
            return await asyncio.wait_for(read_file(_file_path(url), max_bytes), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"url: the file was not read within {timeout:g}s") from None
        except Conflict as exc:  # a folder, FIFO, device...: nothing to show
            raise InvalidArgument(f"url: {exc.message}", details={"field": "url", **exc.details}) from None
    if scheme == "data":
        return _decode_data_url(url, max_bytes)
    raise InvalidArgument(
        f"url: unsupported scheme {scheme or '(none)'!r}; use http, https, file or data",
        details={"field": "url"},
    )


def _forbidden_address(address: str) -> bool:
    """Addresses of the VM itself and of no host at all: the route must not reach them."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast


def _refused(host: str) -> InvalidArgument:
    return InvalidArgument(
        f"url: {host} is a loopback, link-local or unspecified address; wallpapers are not fetched from it",
        details={"field": "url", "host": host},
    )


def _checked_url(url: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"url: {url!r} is not an http(s) URL with a host", details={"field": "url"})
    try:
        literal = ipaddress.ip_address(parts.hostname.split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is not None and _forbidden_address(parts.hostname):  # aiohttp does not resolve literals
        raise _refused(parts.hostname)
    return parts


async def _fetch_http(url: str, max_bytes: int, timeout: float) -> bytes:
    connector = aiohttp.TCPConnector(resolver=_PublicResolver(), use_dns_cache=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 10.0), sock_read=timeout)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
            for _ in range(MAX_REDIRECTS + 1):
                _checked_url(url)
                async with session.get(url, allow_redirects=False) as response:
                    location = response.headers.get("Location")
                    if response.status in (301, 302, 303, 307, 308) and location:
                        url = urllib.parse.urljoin(url, location)  # checked again before it is fetched
                        continue
                    return await _read_answer(response, max_bytes)
            raise InvalidArgument(f"url: more than {MAX_REDIRECTS} redirects", details={"field": "url"})
    except aiohttp.ClientError as exc:
        raise InvalidArgument(
            f"url: cannot fetch: {type(exc).__name__}: {exc}", details={"field": "url"}
        ) from None


async def _read_answer(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if response.status != 200:
        raise InvalidArgument(
            f"url: the server answered HTTP {response.status}",
            details={"field": "url", "status": response.status},
        )
    if response.content_length is not None and response.content_length > max_bytes:
        raise _too_large(max_bytes)
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


class _PublicResolver(AbstractResolver):
    """Resolves a host name and keeps only the addresses a wallpaper may come from; the
    connection is then made to one of exactly these (no second lookup a DNS rebind could switch)."""

    def __init__(self) -> None:
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._resolver.resolve(host, port, family)
        allowed = [answer for answer in answers if not _forbidden_address(answer["host"])]
        if not allowed:
            raise _refused(host)
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


def _file_path(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InvalidArgument(
            "url: file URLs must name a local file (file:///path)", details={"field": "url"}
        )
    return urllib.parse.unquote(parts.path)


def _decode_data_url(url: str, max_bytes: int) -> bytes:
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise InvalidArgument("url: a data URL needs a ',' before its data", details={"field": "url"})
    if len(payload) > max_bytes * 4 // 3 + 4:
        raise _too_large(max_bytes)
    if header.lower().endswith(";base64"):
        try:
            data = base64.b64decode(urllib.parse.unquote(payload), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument("url: the data URL is not valid base64", details={"field": "url"}) from None
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"url: the image is larger than {max_bytes} bytes", details={"max_bytes": max_bytes}
    )
