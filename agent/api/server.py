"""The HTTP server around the app: timeouts, a connection cap, and errors aiohttp answers itself.

aiohttp alone keeps a connection whose headers never finish for its keep-alive time (3,630 s by
default), lets a stalled body hold a handler forever, accepts connections until the process runs
out of descriptors (then logs a traceback per failed accept), and answers requests its parser
rejects with text/plain after logging the rejected line, bearer token included. Here:

* a request's headers must arrive within ``http_header_timeout`` of its first byte (408, close);
* a body must not stall (no byte while the handler waits for one) for ``http_body_timeout``, and
  once it has taken that long it must average ``MIN_BODY_RATE`` (a byte every few seconds keeps a
  body from stalling but not from being cut: 408);
* an idle keep-alive connection closes after ``http_keepalive_timeout``;
* past ``http_max_connections`` a waiting connection is closed to make room (one stuck in its
  headers or whose handler waits for its body first, then one that sent nothing, then an idle
  keep-alive one; oldest first, none younger than a second), so slow connections cannot lock
  clients out; when none can go (every
  connection busy with a request, or a flood of brand-new ones) the newcomer gets a 503 envelope;
* the parser's 400s are our JSON envelope with a request id, and are logged without the header;
* repeated warnings and errors are logged once per interval, with a count (``throttle``);
  running out of descriptors sheds new connections instead of storming (``listener``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import secrets
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from agent.api.middleware import REQUEST_ID_HEADER, error_response
from agent.api.throttle import THROTTLE
from agent.config import Config
from agent.errors import AgentError, InvalidArgument, RequestTimeout, Unavailable

LOG = logging.getLogger(__name__)
RESERVED_DESCRIPTORS = 256  # for X connections, command pipes, files and logs, beyond client sockets
SHED_GRACE = 1.0  # seconds a connection is left alone in a state before the cap may close it
REFUSAL_LINGER = 1.0  # seconds a refused connection stays half-open so the client reads the answer
MIN_BODY_RATE = 1024  # bytes/s a body must average once it has taken http_body_timeout


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float
    body_timeout: float
    keepalive_timeout: float
    max_connections: int

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        return cls(
            header_timeout=config.http_header_timeout,
            body_timeout=config.http_body_timeout,
            keepalive_timeout=config.http_keepalive_timeout,
            max_connections=_connection_cap(config.http_max_connections),
        )


def _connection_cap(configured: int) -> int:
    """``configured``, lowered if the descriptor limit would run out first (EMFILE on accept)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or configured + RESERVED_DESCRIPTORS <= soft:
        return configured
    lowered = max(1, soft - RESERVED_DESCRIPTORS)
    LOG.warning(
        "http_max_connections %d lowered to %d: the open-files limit is %d (raise LimitNOFILE=)",
        configured,
        lowered,
        soft,
    )
    return lowered


def raw_error(error: AgentError) -> bytes:
    """A complete HTTP/1.1 error answer with our envelope, for a connection with no request object."""
    request_id = secrets.token_hex(8)
    body = json.dumps(
        {
            "error": {"code": error.code, "message": error.message, "details": error.details},
            "request_id": request_id,
        }
    ).encode()
    head = [
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        f"{REQUEST_ID_HEADER}: {request_id}",
        "Connection: close",
    ]
    if error.retry_after is not None:
        head.append(f"Retry-After: {max(1, round(error.retry_after))}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _parser_error(exc: BaseException | None, status: int) -> AgentError:
    """What a request aiohttp could not parse gets: names the kind of fault, never echoes the bytes."""
    if status >= 500:
        return AgentError("internal error (a bug; see the agent log)")
    if isinstance(exc, LineTooLong):
        return InvalidArgument(
            "the request line or a header is longer than the server accepts (8190 bytes)",
            details={"fault": type(exc).__name__},
        )
    kind = type(exc).__name__ if exc is not None else "BadRequest"
    return InvalidArgument(
        f"malformed HTTP request ({kind}): check the request line and headers for control characters,"
        " bare LFs and spaces before colons",
        details={"fault": kind},
    )


class EdgeProtocol(RequestHandler):
    """aiohttp's connection handler plus header/body deadlines and parser errors as our envelope."""

    __slots__ = (
        "_body",
        "_body_activity",
        "_body_started",
        "_deadline",
        "_head_started",
        "_idle_since",
        "_limits",
    )

    def __init__(self, manager: web.Server, *, limits: Limits, **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=limits.keepalive_timeout, **kwargs)
        self._limits = limits
        self._head_started: float | None = None  # first byte of a request whose headers are not in
        self._body: StreamReader | None = None  # the body being received, if any
        self._body_activity = 0.0
        self._body_started = 0.0
        self._deadline: asyncio.TimerHandle | None = None
        self._idle_since = self._loop.time()

    # ----- state the server's connection cap looks at ------------------------------------------

    @property
    def waiting(self) -> bool:
        """No request is being handled or queued: the connection is idle or still in its headers."""
        return self.transport is not None and not self._request_in_progress and not self._messages

    @property
    def awaiting_body(self) -> bool:
        """The handler waits for body bytes the client has not sent: the client holds it up."""
        body = self._body
        return (
            self.transport is not None
            and body is not None
            and not body.is_eof()
            and body._waiter is not None  # aiohttp's reader has no public "is waiting"
        )

    @property
    def sheddable(self) -> bool:
        return self.waiting or self.awaiting_body

    @property
    def shed_order(self) -> tuple[int, float]:
        """Which waiting connection the cap closes first: lowest first.

        Connections stuck in their headers (a slowloris), oldest first; then connections that have
        sent nothing yet, oldest first; idle keep-alive connections of clients that were served last.
        None younger in its state than SHED_GRACE: a client that just connected, or just got its
        answer, gets to send its request (in a flood of new connections, the newcomer gets the 503).
        """
        if self._head_started is not None:
            return (0, self._head_started)
        if self.awaiting_body:  # a slow body is a slowloris too
            return (0, self._body_started)
        return (1 if self._request_count == 0 else 2, self._idle_since)

    # ----- deadlines ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        now = self._loop.time()
        body = self._body
        if body is not None and not body.is_eof():
            self._body_activity = now
        elif data and self._head_started is None:
            self._head_started = now
            self._schedule(now + self._limits.header_timeout)
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:  # a request's headers are complete
            self._head_started = None
            payload = self._messages[-1][1] if self._messages else None
            if isinstance(payload, StreamReader) and not payload.is_eof():
                self._body, self._body_activity, self._body_started = payload, now, now
                self._schedule(now + self._limits.body_timeout)
            else:
                self._body = None

    def _schedule(self, when: float) -> None:
        if self._deadline is not None:
            if self._deadline.when() <= when:
                return  # the earlier check reschedules itself
            self._deadline.cancel()
        self._deadline = self._loop.call_at(when, self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._deadline = None
        if self.transport is None or self._force_close:
            return
        now = self._loop.time()
        if self._head_started is not None and (self._request_in_progress or self._messages):
            # Bytes of a next request (or stray CRLFs) while one is being answered: its headers
            # only start to count once that answer is out; a 408 must never cut into it.
            self._head_started = now
        if self._head_started is not None:
            if now - self._head_started >= self._limits.header_timeout:
                THROTTLE.warning(
                    "slow-headers",
                    "closed a connection whose request headers did not arrive within %ss",
                    self._limits.header_timeout,
                )
                self.refuse(
                    RequestTimeout(
                        f"the request headers did not arrive within {self._limits.header_timeout}s"
                        " (http_header_timeout)"
                    )
                )
                return
            self._schedule(self._head_started + self._limits.header_timeout)
        body = self._body
        if body is not None and not body.is_eof() and body.exception() is None:
            if self._reading_paused:  # the handler is behind, not the client
                self._body_activity = now
            taken = now - self._body_started
            if now - self._body_activity >= self._limits.body_timeout:
                self._stall(body, f"no byte for {self._limits.body_timeout}s")
            elif (
                taken >= self._limits.body_timeout
                and not self._reading_paused
                and body.total_bytes < MIN_BODY_RATE * taken
            ):
                self._stall(body, f"less than {MIN_BODY_RATE} bytes/s after {round(taken)}s")
            else:  # checked every few seconds while the body comes in
                self._schedule(min(self._body_activity + self._limits.body_timeout, now + 5.0))

    def _stall(self, body: StreamReader, why: str) -> None:
        """The client stopped sending its body (or trickles it): the handler's read fails with
        408, then close."""
        THROTTLE.warning("slow-body", "a request body stalled (%s); answered 408", why)
        if self._current_request is None:  # no handler waits on it (done, or not yet started)
            self.force_close()
            return
        self._lingering_time = 0.0  # do not wait for the rest of the body after answering
        body.set_exception(RequestTimeout(f"the request body stalled: {why} (http_body_timeout)"))

    async def _handle_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._handle_request(*args, **kwargs)
        finally:
            self._idle_since = self._loop.time()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    # ----- refusals and errors -----------------------------------------------------------------

    def refuse(self, error: AgentError) -> None:
        """Answer ``error`` without reading a request, then close (after the client could read it)."""
        transport = self.transport
        self._force_close = True  # start() and data_received() stop; further input is ignored
        if transport is None or transport.is_closing():
            return
        transport.write(raw_error(error))
        if transport.can_write_eof():
            transport.write_eof()
        self._loop.call_later(REFUSAL_LINGER, transport.close)

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Parser and server errors as our envelope; logged by kind, never with the request's bytes."""
        kind = type(exc).__name__ if exc is not None else str(status)
        if status >= 500:
            THROTTLE.error("server-error", "internal error outside the app: %s", kind)
        elif not (self._request_count == 1 and isinstance(exc, BadHttpMethod)):
            THROTTLE.warning("bad-request", "refused a malformed HTTP request: %s", kind)
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response")
        request_id = secrets.token_hex(8)
        response = error_response(_parser_error(exc, status), request_id)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's own failures: the kind only (an exception's text may quote request bytes)."""
        exc = kw.get("exc_info")
        kind = type(exc).__name__ if isinstance(exc, BaseException) else "error"
        THROTTLE.error("server-exception", "%s: %s", args[0] if args else "server error", kind)


class EdgeServer(web.Server):
    """aiohttp's server making EdgeProtocol connections, under a connection cap."""

    def __init__(self, *args: Any, limits: Limits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits

    def __call__(self) -> RequestHandler:
        return EdgeProtocol(self, loop=self._loop, limits=self._limits, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        live = [h for h in self._connections if h.transport is not None and not h._force_close]
        if len(live) <= self._limits.max_connections:
            return
        settled = self._loop.time() - SHED_GRACE
        waiting = [
            h
            for h in live
            if isinstance(h, EdgeProtocol) and h is not handler and h.sheddable and h.shed_order[1] <= settled
        ]
        if waiting:
            min(waiting, key=lambda h: h.shed_order).force_close()
            THROTTLE.warning(
                "connection-cap",
                "%d connections open (http_max_connections): closed a waiting one (slow headers first)",
                len(live),
            )
            return
        THROTTLE.warning(
            "connection-cap-busy",
            "%d connections open (http_max_connections), all with a request: refused a new one",
            len(live),
        )
        assert isinstance(handler, EdgeProtocol)
        handler.refuse(
            Unavailable(
                f"the agent has {self._limits.max_connections} connections open, all busy "
                "(http_max_connections); retry shortly"
            )
        )


class EdgeRunner(web.AppRunner):
    """``web.AppRunner`` serving through EdgeServer."""

    __slots__ = ("_edge_limits",)

    def __init__(self, app: web.Application, *, limits: Limits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._edge_limits = limits

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the app's startup and freezes it
        return EdgeServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            limits=self._edge_limits,
            **self._kwargs,
        )
