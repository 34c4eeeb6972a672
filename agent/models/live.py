"""Models of the live channels: the desktop event stream (GET /events, /ws subscriptions), the
WebSocket command channel (GET /ws) and its single-use tickets (POST /ws/ticket).

Every event is one JSON object with an increasing ``id`` and a ``type`` naming what happened;
the same object is an SSE ``data:`` line, an NDJSON line and a /ws text frame.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, RootModel

from agent.models.base import Request, Result
from agent.models.windows import Window

MAX_TICKET_TTL = 300.0
_EVENTS_FILTER = Field(
    default=None,
    description="Only these event types (e.g. window.created) or families (window, window.*); "
    "default: all. A gap event is always sent",
)


class EventsRequest(Request):
    type: Literal["events"] = "events"
    events: list[str] | None = _EVENTS_FILTER
    last_event_id: int | None = Field(
        default=None,
        ge=0,
        description="Resume after this event id (also the Last-Event-ID header an EventSource sends "
        "on reconnecting): the missed events still in the ring come first, or a gap event",
    )
    ticket: str | None = Field(default=None, description="A single-use ticket from POST /ws/ticket")


class _Event(Result):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True, validate_by_name=True)

    id: int = Field(description="Increasing (across agent restarts too: the first is the start time in µs)")
    time: float = Field(description="When it happened (Unix time, seconds)")


class WindowEvent(_Event):
    type: Literal["window.created", "window.destroyed", "window.focused", "window.moved", "window.resized"]
    window: Window | None = Field(
        description="The window as GET /desktop/windows lists it (its last known state once destroyed); "
        "null for window.focused when no window has the focus"
    )


class WindowRenamedEvent(_Event):
    type: Literal["window.renamed"] = "window.renamed"
    window: Window
    old_title: str


class ClipboardEvent(_Event):
    type: Literal["clipboard.changed"] = "clipboard.changed"
    selection: Literal["clipboard"] = "clipboard"
    owner: str | None = Field(
        description="The new owner's window id (null: nobody owns it); read the text with GET /clipboard"
    )


class ScreenEvent(_Event):
    type: Literal["screen.resized"] = "screen.resized"
    width: int
    height: int


class ReadinessEvent(_Event):
    type: Literal["readiness.changed"] = "readiness.changed"
    ready: bool
    status: str = Field(description="ready, starting, degraded or stopping (as GET /ready)")
    checks: dict[str, bool] = Field(description="Each check's verdict")


class ProcessExitedEvent(_Event):
    type: Literal["process.exited"] = "process.exited"
    process_id: str = Field(description="The background process's id (GET /processes/{id})")
    pid: int | None
    exit_code: int
    signal: str | None
    timed_out: bool


class AppExitedEvent(_Event):
    type: Literal["app.exited"] = "app.exited"
    pid: int = Field(description="The pid POST /desktop/launch answered")
    program: str
    exit_code: int = Field(description="Negative: killed by that signal")


class GapEvent(_Event):
    type: Literal["gap"] = "gap"
    missed_from: int = Field(description="The first event id the stream can no longer replay")
    missed_to: int = Field(description="The last one (the next event sent follows it)")


DesktopEventUnion = Annotated[
    WindowEvent
    | WindowRenamedEvent
    | ClipboardEvent
    | ScreenEvent
    | ReadinessEvent
    | ProcessExitedEvent
    | AppExitedEvent
    | GapEvent,
    Field(discriminator="type"),
]


class DesktopEvent(RootModel[DesktopEventUnion]):
    """One event of GET /events (and of /ws subscriptions)."""


# -- the WebSocket channel -------------------------------------------------------------------
class WebSocketRequest(Request):
    type: Literal["ws"] = "ws"
    ticket: str | None = Field(
        default=None,
        description="A single-use ticket from POST /ws/ticket, for browsers (which cannot send the "
        "Authorization header on a WebSocket); never put the bearer token in a URL",
    )
    events: list[str] | None = Field(
        default=None, description="Subscribe to these events at once (as a subscribe message would)"
    )
    last_event_id: int | None = Field(default=None, ge=0, description="With events: resume after this id")


class TicketRequest(Request):
    type: Literal["ws_ticket"] = "ws_ticket"
    ttl_seconds: float = Field(
        default=30.0, gt=0, le=MAX_TICKET_TTL, description="How long the ticket may wait for its use"
    )


class Ticket(Result):
    ticket: str = Field(description="Pass as ?ticket= on GET /ws (or /events); good for one connection")
    expires_in: float = Field(description="Seconds left to use it")


class SubscribeMessage(Request):
    """A /ws message: stream these events on this connection (replaces an earlier subscription)."""

    type: Literal["subscribe"] = "subscribe"
    events: list[str] | None = _EVENTS_FILTER
    last_event_id: int | None = Field(default=None, ge=0, description="Resume after this id")


class UnsubscribeMessage(Request):
    type: Literal["unsubscribe"] = "unsubscribe"


class BinaryFrame(Result):
    bytes: int = Field(description="The size of the binary frame that follows this text frame")
    content_type: str = Field(description="What it holds, e.g. image/png")


class WsAnswer(Result):
    """A /ws answer: /actions' ``success`` and ``result``, with the message's ``request_id``."""

    request_id: str | int | None
    success: Literal[True] = True
    result: dict[str, object]
    binary: BinaryFrame | None = Field(
        default=None, description="Present on image answers: the image is the next (binary) frame"
    )


class WsErrorAnswer(Result):
    """A /ws error: the HTTP error envelope's ``error``, the status HTTP would have answered."""

    request_id: str | int | None
    success: Literal[False] = False
    status: int
    error: dict[str, object] = Field(description="code, message, details: as in the Error envelope")
    retry_after: float | None = Field(default=None, description="As the Retry-After header would say")
