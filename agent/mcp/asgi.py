"""Serving an ASGI application (the MCP SDK's streamable-HTTP transport) from an aiohttp handler.

The official SDK implements the MCP streamable-HTTP transport (protocol versions, JSON-RPC
framing, sessions, SSE) as an ASGI app. Rather than re-implement that protocol over aiohttp (and
chase each revision of it), the daemon hands the request to the SDK in-process: the aiohttp
request becomes an ASGI scope and ``receive``, the ASGI ``send`` events become an aiohttp
``StreamResponse``. Everything in front of the handler (the error envelope, Host and Origin
checks, bearer auth, body type) is the daemon's own middleware, as for every route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web

from agent.errors import PayloadTooLarge

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # JSON-RPC messages; large data goes through /files


def _scope(request: web.Request) -> dict[str, Any]:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    sock = transport.get_extra_info("sockname") if transport is not None else None
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode(),
        "query_string": request.query_string.encode(),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()],
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": tuple(sock[:2]) if isinstance(sock, tuple) else None,
        "state": {},
        "extensions": {},
    }


async def _read_body(request: web.Request) -> bytes:
    """The whole body (it arrives in pieces), refused past MAX_MESSAGE_BYTES."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(f"an MCP message is at most {MAX_MESSAGE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def serve_asgi(app: ASGIApp, request: web.Request) -> web.StreamResponse:
    """Run ``app`` for ``request``; the response it sends, streamed as it sends it."""
    body = await _read_body(request)
    delivered = False
    finished = asyncio.Event()
    response: web.StreamResponse | None = None

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()  # nothing more arrives; the client is gone once the answer is sent
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal response
        if message["type"] == "http.response.start":
            response = web.StreamResponse(status=message["status"])
            for name, value in message.get("headers", []):
                response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
        elif message["type"] == "http.response.body" and response is not None:
            if not response.prepared:
                await response.prepare(request)
            if message.get("body"):
                await response.write(message["body"])
            if not message.get("more_body", False):
                await response.write_eof()
                finished.set()

    try:
        await app(_scope(request), receive, send)
    finally:
        finished.set()
    if response is None:
        raise web.HTTPInternalServerError(reason="the MCP transport sent no answer")
    if not response.prepared:  # a start without a body
        await response.prepare(request)
        await response.write_eof()
    return response
