"""JSON request bodies: bounded per route, parsed with a depth and integer-size limit, off the loop.

One body limit for every route let one 63 MiB JSON body hold the event loop for seconds and take
gigabytes while parsed; a 5,000-deep nesting raised RecursionError and a 5,000-digit integer the
int() digit limit, both as 500s. Each route now has its own ceiling (few carry bulk data), bodies
are refused from their Content-Length before they are read, nesting is measured before parsing,
and a large body is parsed in a worker thread.
"""

from __future__ import annotations

import array
import asyncio
import itertools
import json
import re
from typing import Any

from aiohttp import web

from agent.actions.registry import BULK_BODY, DEFAULT_BODY_LIMIT, REGISTRY, KiB, MiB
from agent.api.appkeys import CONFIG_KEY
from agent.errors import InvalidArgument, PayloadTooLarge

# /actions and /batch are not operations of their own: their limits (the others are declared).
ROUTE_LIMITS: dict[str, int] = {
    "batch": 4 * MiB,  # at most MAX_BATCH_ACTIONS actions
    "actions": BULK_BODY,  # any one action, set_clipboard included
}
MAX_DEPTH = 64  # arrays and objects; real requests nest at most ~6 deep
MAX_INT_DIGITS = 4300  # CPython's own int() limit; a longer integer is never a valid value here
THREAD_THRESHOLD = 256 * KiB  # bodies above this are parsed in a worker thread (~1 ms inline below)

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")


def body_limit(request: web.Request) -> int:
    """The largest body this request's route takes (never above max_body_bytes)."""
    ceiling = request.app[CONFIG_KEY].max_body_bytes
    name = request.match_info.route.name or ""
    if name in ROUTE_LIMITS:
        limit = ROUTE_LIMITS[name]
    else:
        operation = REGISTRY.find(name)
        limit = operation.max_body if operation is not None else DEFAULT_BODY_LIMIT
    return ceiling if limit == BULK_BODY else min(limit, ceiling)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The JSON object body of a request; no body at all is ``{}`` (whitespace is not JSON)."""
    raw = await read_bounded(request, body_limit(request))
    if not raw:
        return {}
    data = await asyncio.to_thread(parse_json, raw) if len(raw) > THREAD_THRESHOLD else parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidArgument("the body must be a JSON object")
    return data


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to pass ``limit``."""
    route = f"{request.method} {request.path}"
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(route, limit, f"the body is {declared} bytes")
    chunks: list[bytes] = []
    total = 0
    while chunk := await request.content.readany():
        total += len(chunk)
        if total > limit:
            raise _too_large(route, limit, "the body passed it")
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(route: str, limit: int, what: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"{what}; {route} takes at most {limit} bytes (see max_body_bytes for routes carrying bulk data)",
        details={"limit": limit},
    )


def parse_json(raw: bytes) -> Any:
    """``json.loads`` refusing deep nesting and huge integers with a 400 that names the limit."""
    depth = nesting_depth(raw)
    if depth > MAX_DEPTH:
        raise _too_deep()
    try:
        return json.loads(raw, parse_int=_bounded_int)
    except RecursionError:  # the scan miscounted (a non-UTF-8 encoding): still the depth limit
        raise _too_deep() from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"the body is not valid JSON: {exc}") from None


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw`` (brackets inside strings do not count)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return 0  # cannot be deeper than the limit: no scan
    skeleton = array.array("b")
    skeleton.frombytes(_STRING.sub(b"", raw).translate(_BRACKETS, _NOT_BRACKETS))  # +1 open, -1 close
    return max(itertools.accumulate(skeleton), default=0)


def _bounded_int(literal: str) -> int:
    if len(literal) - literal.startswith("-") > MAX_INT_DIGITS:
        raise InvalidArgument(
            f"the body has an integer of {len(literal)} digits; at most {MAX_INT_DIGITS} are accepted",
            details={"limit": MAX_INT_DIGITS},
        )
    return int(literal)


def _too_deep() -> InvalidArgument:
    return InvalidArgument(
        f"the body nests arrays/objects deeper than {MAX_DEPTH} levels", details={"limit": MAX_DEPTH}
    )
