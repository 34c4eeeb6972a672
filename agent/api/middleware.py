"""Request id, access log, bearer auth and the one error envelope."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from agent.actions import manifest
from agent.api.appkeys import TOKEN_KEY
from agent.errors import (
    AgentError,
    InvalidArgument,
    MethodNotAllowed,
    PayloadTooLarge,
    RouteNotFound,
    Unauthenticated,
)
from agent.live.tickets import TicketBook
from agent.supervision.logs import REQUEST_ID

LOG = logging.getLogger(__name__)
ACCESS = logging.getLogger("agent.access")

REQUEST_ID_HEADER = "X-Request-Id"
# On every error answer the agent itself gives, its code: a proxy in front (the control plane)
# passes it through and can tell the agent's 404 WINDOW_NOT_FOUND from its own "no such computer".
ERROR_HEADER = "X-Computer-Agent-Error"


def error_response(exc: AgentError, request_id: str) -> web.Response:
    body: dict[str, Any] = {
        "error": {"code": exc.code, "message": exc.message, "details": exc.details},
        "request_id": request_id,
    }
    headers = {REQUEST_ID_HEADER: request_id, ERROR_HEADER: exc.code}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="computer-agent"'
    if isinstance(exc, MethodNotAllowed) and "allowed" in exc.details:
        headers["Allow"] = ", ".join(exc.details["allowed"])
    return web.json_response(body, status=exc.status, headers=headers)


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> AgentError:
    if isinstance(exc, web.HTTPNotFound):
        return RouteNotFound(f"no route for {request.method} {request.path}")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        return MethodNotAllowed(
            f"method {exc.method} is not allowed here; allowed: {', '.join(allowed)}",
            details={"allowed": allowed},
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge("the request body is larger than the configured limit")
    if 400 <= exc.status < 500:
        return InvalidArgument(exc.reason)
    return AgentError(exc.reason)


CLIENT_CLOSED = 499  # nginx's "client closed request": what the access log and metrics say


@web.middleware
async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: request id, access log, and every error rendered as the JSON envelope."""
    request_id = request.headers.get(REQUEST_ID_HEADER) or secrets.token_hex(8)
    if len(request_id) > 128 or not request_id.isprintable():
        request_id = secrets.token_hex(8)
    token = REQUEST_ID.set(request_id)
    started = time.perf_counter()
    status = 500  # what the access log says if even the error rendering fails
    try:
        try:
            response = await handler(request)
        except AgentError as exc:
            response = error_response(exc, request_id)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = error_response(_from_http_exception(exc, request), request_id)
        except RequestPayloadError as exc:  # e.g. "Content-Encoding: gzip" on a body that is not
            response = error_response(
                InvalidArgument(
                    f"the request body cannot be read: {exc} (check Content-Encoding)",
                    details={"header": "Content-Encoding"},
                ),
                request_id,
            )
        except ConnectionResetError:  # the client went away (mid-body, or before its answer)
            status = CLIENT_CLOSED
            return web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")
        except asyncio.CancelledError:  # its work was cancelled because the client left, or a stop
            status = CLIENT_CLOSED
            raise
        except Exception:
            LOG.exception("unhandled error serving %s %s", request.method, request.path)
            response = error_response(AgentError("internal error (a bug; see the agent log)"), request_id)
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        status = response.status
        return response
    finally:
        if ACCESS.isEnabledFor(logging.INFO):
            # Written once the answer is on its way: call_soon runs after this task's step (which
            # sends the response), in a copy of this context, so the line keeps its request id.
            elapsed_ms = (time.perf_counter() - started) * 1000
            asyncio.get_running_loop().call_soon(
                _log_access, request.method, request.path, status, elapsed_ms, request.remote
            )
        REQUEST_ID.reset(token)


def _log_access(method: str, path: str, status: int, elapsed_ms: float, remote: str | None) -> None:
    """The access line; a record made directly, as ``ACCESS.info`` would, without its stack walk
    for a caller that is always this function (~40 us a request on this VM, half of it that)."""
    fields = {"method": method, "path": path, "status": status, "duration_ms": round(elapsed_ms, 3)}
    fields["remote"] = remote
    record = ACCESS.makeRecord(
        ACCESS.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %s",
        (method, path, status),
        None,
        None,
        extra={"fields": fields},
    )
    ACCESS.handle(record)


TICKETS_KEY = web.AppKey("tickets", TicketBook)


def _ticket_admits(request: web.Request) -> bool:
    """Whether a single-use ticket (POST /ws/ticket) opens this request: only on routes declared
    to take one, and only once (it is spent here, whatever happens next)."""
    ticket = request.query.get("ticket")
    if ticket is None or request.match_info.route.name not in manifest.TICKETS or request.method != "GET":
        return False
    tickets = request.app.get(TICKETS_KEY)
    return tickets is not None and tickets.redeem(ticket)


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[TOKEN_KEY]
    if expected and request.match_info.route.name not in manifest.PUBLIC:
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        # Header bytes that are not UTF-8 arrive as lone surrogates: encoded back as the bytes sent.
        presented_bytes = presented.strip().encode("utf-8", "surrogateescape")
        bearer = scheme.lower() == "bearer" and hmac.compare_digest(presented_bytes, expected)
        if not bearer and not _ticket_admits(request):  # a ticket is spent only when it is needed
            if "ticket" in request.query:
                raise Unauthenticated(
                    "no bearer token, and the ticket is unknown, spent or expired, or this route takes "
                    "none (a ticket opens one GET /ws or /events)"
                )
            raise Unauthenticated("missing or wrong bearer token")
    return await handler(request)
