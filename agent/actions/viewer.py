"""The live viewer page: POST /viewer/ticket mints a single-use link, GET /viewer serves the page.

Why a link ticket and not the token: a browser opens the page by URL, and the long-lived token
must never be in a URL. The link is good for one page load within ``ttl_seconds``; the page it
loads carries its own single-use tickets for GET /screencast and, with ``control``, GET /ws
(which accepts only the agent's own origin). The page is sent with a CSP that allows only its own
inline script (by nonce) and connections to the agent, and may not be framed. See
docs/live.md.
"""

from __future__ import annotations

import json
import secrets
from importlib import resources
from urllib.parse import urlencode

from agent.actions.outputs import RawBody
from agent.actions.registry import REGISTRY
from agent.errors import Unauthenticated, Unavailable
from agent.models.screencast import ViewerRequest, ViewerTicket, ViewerTicketRequest
from agent.services import Services

PAGE_TICKET_TTL = 30.0  # seconds the page has to open its screencast and /ws after it loads


def _page_template() -> str:
    return resources.files("agent.api.static").joinpath("viewer.html").read_text("utf-8")


async def viewer_ticket(services: Services, req: ViewerTicketRequest) -> ViewerTicket:
    if services.live is None:
        raise Unavailable("the live channels (tickets, /ws) are not running on this agent")
    ticket = services.viewer_tickets.issue(req.ttl_seconds, control=req.control)
    query = {"ticket": ticket, "fps": f"{req.fps:g}", "quality": str(req.quality)}
    if req.max_width is not None:
        query["max_width"] = str(req.max_width)
    return ViewerTicket(
        url=f"/viewer?{urlencode(query)}", ticket=ticket, control=req.control, expires_in=req.ttl_seconds
    )


async def viewer(services: Services, req: ViewerRequest) -> RawBody:
    control = None if req.ticket is None else services.viewer_tickets.redeem(req.ticket)
    if control is None or services.live is None:
        raise Unauthenticated(
            "this viewer link is not valid (unknown, already used or expired): mint a new one"
        )
    tickets = services.live.tickets
    screencast = {
        "fps": f"{req.fps:g}",
        "quality": str(req.quality),
        "ticket": tickets.issue(PAGE_TICKET_TTL),
    }
    if req.max_width is not None:
        screencast["max_width"] = str(req.max_width)
    config = {
        "screencast": screencast,
        "control": control,
        "ws_ticket": tickets.issue(PAGE_TICKET_TTL) if control else None,
    }
    nonce = secrets.token_urlsafe(16)
    # In a <script type="application/json">: "<" escaped so no "</script>" can end it early.
    config_json = json.dumps(config).replace("<", "\\u003c")
    page = _page_template().replace("{{NONCE}}", nonce).replace("{{CONFIG}}", config_json)
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src blob:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return RawBody(page.encode("utf-8"), "text/html; charset=utf-8", headers)


REGISTRY.add(
    "viewer_ticket",
    ViewerTicketRequest,
    viewer_ticket,
    summary="A single-use link to the live viewer page (view only, or with control)",
    description="Open `url` (relative to the agent) in a browser within ttl_seconds; it works once. "
    "With control=true the page forwards mouse and keyboard to the desktop through GET /ws.",
    route="/viewer/ticket",
    result=ViewerTicket,
    errors=(400, 401, 503),
    tag="live",
)
REGISTRY.add(
    "viewer",
    ViewerRequest,
    viewer,
    summary="The live viewer page: the screencast, and with a control link mouse and keyboard",
    description="Needs no Authorization header: the single-use link ticket from POST /viewer/ticket "
    "is its credential (a 401 when unknown, used or expired). A small HTML/JS page, no build step.",
    route="/viewer",
    method="GET",
    media="html",
    ok="The page",
    errors=(400, 401),
    public=True,
    actions=False,
    tag="live",
)
