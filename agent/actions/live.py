"""The live channels' operations: GET /events, POST /ws/ticket and GET /ws.

The WebSocket protocol itself (``agent.api.websocket``) runs every registered action through the
registry, like /actions; these declarations give it a route, its auth and its OpenAPI entry.
"""

from __future__ import annotations

from agent.actions.outputs import EventStream, Upgrade
from agent.actions.registry import REGISTRY
from agent.errors import Unavailable
from agent.live.hub import event_filter
from agent.live.kinds import EVENT_TYPES
from agent.live.sources import LiveService
from agent.models.live import (
    DesktopEvent,
    EventsRequest,
    Ticket,
    TicketRequest,
    WebSocketRequest,
)
from agent.services import Services

WS_PROTOCOL = (
    "Text frames carry JSON. Send any action of POST /actions as a message, with a `request_id` of "
    'your choice: `{"type": "click", "x": 10, "y": 20, "request_id": "1"}`; the answer carries '
    'it back: `{"request_id": "1", "success": true, "result": {...}}` or `{"request_id": "1", '
    '"success": false, "status": 400, "error": {"code", "message", "details"}}`. Many '
    "requests may be in flight; input actions (and `wait`) run one after the other in the order sent, "
    "others at once. An image answer is a text frame whose `binary` field describes the binary frame "
    'that follows it (or base64 JSON with `"base64": true`). `{"type": "subscribe", "events": '
    '[...], "last_event_id": N}` streams the events of GET /events as text frames (`unsubscribe` '
    "stops them). See docs/live.md."
)


def live(services: Services) -> LiveService:
    if services.live is None:
        raise Unavailable("the event hub is not running on this agent")
    return services.live


async def events(services: Services, req: EventsRequest) -> EventStream:
    accept = event_filter(req.events)
    stream = live(services).hub.follow(req.last_event_id, accept)
    return EventStream(stream, stream.aclose)


async def ws_ticket(services: Services, req: TicketRequest) -> Ticket:
    return Ticket(ticket=live(services).tickets.issue(req.ttl_seconds), expires_in=req.ttl_seconds)


async def websocket(services: Services, req: WebSocketRequest) -> Upgrade:
    if req.events is not None:
        event_filter(req.events)  # an unknown name is a 400 before the upgrade
    live(services)
    return Upgrade("commands", req)


REGISTRY.add(
    "events",
    EventsRequest,
    events,
    summary="Desktop events as they happen (Server-Sent Events, or NDJSON)",
    description="Types: "
    + ", ".join(EVENT_TYPES)
    + ", and gap. Each event has an increasing id (the SSE id); resume with Last-Event-ID (or "
    "?last_event_id=) to get what was missed from a bounded ring (events_ring_size), or a gap event "
    "naming the ids lost when the ring no longer holds them. Without it the stream starts now.",
    route="/events",
    method="GET",
    result=DesktopEvent,
    media="events",
    ok="A stream of events: SSE when the request accepts text/event-stream, else NDJSON",
    errors=(400, 401),
    headers={"Last-Event-ID": "last_event_id"},
    cancel_on_disconnect=True,
    actions=False,
    ticket=True,
    tag="live",
)
REGISTRY.add(
    "ws_ticket",
    TicketRequest,
    ws_ticket,
    summary="A single-use ticket that opens GET /ws (or /events) from a browser",
    description="Browsers cannot send Authorization on a WebSocket: put the ticket in the URL "
    "(`/ws?ticket=...`) instead of the token. It opens one connection, within ttl_seconds.",
    route="/ws/ticket",
    result=Ticket,
    errors=(400, 401),
    tag="live",
)
REGISTRY.add(
    "ws",
    WebSocketRequest,
    websocket,
    summary="WebSocket command channel: every action, pipelined, and the event stream",
    description=WS_PROTOCOL,
    route="/ws",
    method="GET",
    media="websocket",
    ok="Switching Protocols: the WebSocket session",
    errors=(400, 401, 403),
    actions=False,
    ticket=True,
    tag="live",
)
