"""GET /ws: one long-lived connection carrying many actions, their answers and desktop events.

Every text frame from the client is one JSON object: an action exactly as POST /actions takes it
(validated and run through the registry, so every action is here and nothing is copied), plus a
``request_id`` of the client's that its answer carries back; or a control message (``subscribe``,
``unsubscribe``). Answers use /actions' result and the HTTP error envelope. Frames are read as
they come: input actions (and ``wait``) queue on this connection's input lane and run in the
order sent; other actions run at once, so a screenshot need not wait behind typing.

Bounded everywhere: at most ``MAX_IN_FLIGHT`` requests run per connection (past it the agent
stops reading frames, so TCP pushes back); answers and events wait in an outbox of at most
``ws_send_buffer_bytes``; an answer that does not fit, or a frame the reader does not take within
``SEND_TIMEOUT``, closes the connection (1008, "slow reader"). Event subscriptions wait for room
instead, and a reader that falls behind the hub's ring gets a gap event. When the connection
ends, its running actions are cancelled and, if it sent input, every key and button still held
is released (as for a /batch whose client left).

Binary frames only ever follow a text frame whose ``binary`` field describes them (an image
answer now; screencast frames can be a subscription of the same shape later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.http import WSCloseCode, WSMsgType  # not `from aiohttp`: see agent.api.lazy_client

from agent.actions.outputs import Output, Upgrade
from agent.actions.registry import BULK_BODY, REGISTRY, Operation, validate
from agent.api.action_routes import execute, imported, result_json
from agent.api.appkeys import SERVICES_KEY
from agent.api.body import parse_json
from agent.config import Config
from agent.errors import AgentError, HostNotAllowed, InvalidArgument, PayloadTooLarge
from agent.live.hub import event_filter
from agent.models.image import ImageResult
from agent.models.live import SubscribeMessage, UnsubscribeMessage, WebSocketRequest
from agent.services import Services

LOG = logging.getLogger(__name__)

MAX_IN_FLIGHT = 256  # requests running or queued per connection before reading pauses
SEND_TIMEOUT = 30.0  # seconds one frame may take to leave before the reader counts as gone
RELEASE_TIMEOUT = 2.0
Frame = str | bytes


class SlowReader(Exception):
    """The client does not read its answers fast enough: the connection is closed."""


class Outbox:
    """Frames waiting for the writer, at most ``limit`` bytes (one over-large group fits alone)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._groups: deque[tuple[Sequence[Frame], int]] = deque()
        self._changed = asyncio.Event()

    def put(self, frames: Sequence[Frame]) -> None:
        size = sum(len(frame) for frame in frames)
        if self._groups and self.size + size > self.limit:
            raise SlowReader(f"{self.size} bytes wait for the reader (ws_send_buffer_bytes {self.limit})")
        self._groups.append((frames, size))
        self.size += size
        self._wake()

    async def put_when_room(self, frames: Sequence[Frame]) -> None:
        size = sum(len(frame) for frame in frames)
        while self._groups and self.size + size > self.limit:
            changed = self._changed
            await changed.wait()
        self.put(frames)

    async def get(self) -> Sequence[Frame]:
        while not self._groups:
            changed = self._changed
            await changed.wait()
        frames, size = self._groups.popleft()
        self.size -= size
        self._wake()
        return frames

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def check_origin(request: web.Request, config: Config) -> None:
    """A WebSocket has no CORS preflight: any page can open one. So a browser's ``Origin`` must be
    the agent's own origin (its own pages) or a host the operator listed in allowed_hosts; a page
    on localhost or on any other site in the desktop's browser is refused, in every auth mode."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return  # not a browser
    parts = urlsplit(origin)
    host = (request.headers.get(hdrs.HOST) or "").lower()
    if parts.netloc.lower() == host and parts.scheme in ("http", "https"):
        return
    name = (parts.hostname or "").rstrip(".")
    for allowed in config.allowed_hosts:
        if allowed in ("*", name) or (allowed.startswith(".") and name.endswith(allowed)):
            return
    raise HostNotAllowed(
        f"a WebSocket from a web page is accepted only from the agent's own pages or a host in "
        f"allowed_hosts: Origin {origin[:200]!r} is not one",
        details={"header": "Origin"},
    )


async def serve(request: web.Request, upgrade: Upgrade) -> web.StreamResponse:
    services = request.app[SERVICES_KEY]
    config = services.config
    check_origin(request, config)
    ws = web.WebSocketResponse(
        heartbeat=config.ws_heartbeat, max_msg_size=config.max_body_bytes, compress=False
    )
    if not ws.can_prepare(request).ok:
        raise InvalidArgument(
            f"{request.path} is a WebSocket: send Connection: Upgrade, Upgrade: websocket",
            details={"header": "Upgrade"},
        )
    await ws.prepare(request)
    assert isinstance(upgrade.request, WebSocketRequest)
    await Session(request, ws, services, upgrade.request).run()
    return ws


class Session:
    """One /ws connection: its reader loop, input lane, running actions, subscription, writer."""

    def __init__(
        self, request: web.Request, ws: web.WebSocketResponse, services: Services, options: WebSocketRequest
    ) -> None:
        self.request = request
        self.ws = ws
        self.services = services
        self.options = options
        self.outbox = Outbox(services.config.ws_send_buffer_bytes)
        self.slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.inputs: asyncio.Queue[tuple[Any, Operation, Any]] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        self.subscription: asyncio.Task[None] | None = None
        self.sent_input = False
        self.closing: str | None = None
        self._stopping_started = False

    async def run(self) -> None:
        writer = asyncio.create_task(self._write(), name="ws-writer")
        lane = asyncio.create_task(self._input_lane(), name="ws-input")
        stopping = asyncio.create_task(self._close_when_stopping(), name="ws-stopping")
        try:
            if self.options.events is not None:
                self._subscribe(None, self.options.events, self.options.last_event_id, answer=False)
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    await self._dispatch(message.data)
                elif message.type == WSMsgType.BINARY:
                    self._answer_error(
                        None, InvalidArgument("binary frames carry no requests: send JSON text")
                    )
                if self.closing is not None:
                    break
        finally:
            if self._stopping_started:  # its closing handshake finishes: cut, the client sees 1006
                await asyncio.wait({stopping}, timeout=3.0)
            running = [
                writer,
                lane,
                stopping,
                *self.tasks,
                *([self.subscription] if self.subscription else []),
            ]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            if self.sent_input:
                await self._release_input()
            if not self.ws.closed:
                code = WSCloseCode.POLICY_VIOLATION if self.closing else WSCloseCode.OK
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self.ws.close(code=code, message=(self.closing or "").encode()[:120]), 1.0
                    )

    async def _close_when_stopping(self) -> None:
        """The agent is stopping: say so (1001) once the events before it are sent, and end."""
        live = self.services.live
        if live is None:
            return
        await live.hub.closed.wait()
        self._stopping_started = True
        if self.subscription is not None:
            await asyncio.wait({self.subscription}, timeout=1.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while self.outbox.size:
                    await asyncio.sleep(0.01)
        await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"the agent is stopping")

    # -- reading -------------------------------------------------------------------------
    async def _dispatch(self, text: str) -> None:
        request_id: Any = None
        try:
            payload = parse_json(text.encode())
            if not isinstance(payload, dict):
                raise InvalidArgument("a message must be a JSON object with a 'type' field")
            request_id = payload.pop("request_id", None)
            if request_id is not None and not isinstance(request_id, str | int):
                request_id = None
                raise InvalidArgument("request_id: a string or an integer")
            kind = payload.get("type")
            if kind == "subscribe":
                message = validate(SubscribeMessage, payload)
                self._subscribe(request_id, message.events, message.last_event_id)
                return
            if kind == "unsubscribe":
                validate(UnsubscribeMessage, payload)
                self._unsubscribe(request_id)
                return
            await imported([kind])
            action, model = REGISTRY.parse(payload, self.services.config)
            self._check_size(action, text)
        except AgentError as exc:
            self._answer_error(request_id, exc)
            return
        await self.slots.acquire()  # past MAX_IN_FLIGHT: stop reading until one finishes
        if action.uses_input or action.tag == "input":
            self.inputs.put_nowait((request_id, action, model))
        else:
            task = asyncio.create_task(self._run(request_id, action, model))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _check_size(self, action: Operation, text: str) -> None:
        limit = self.services.config.max_body_bytes if action.max_body == BULK_BODY else action.max_body
        if len(text) > limit:  # characters: at most the bytes, so never a false refusal
            raise PayloadTooLarge(
                f"{action.type}: the message is larger than {limit} bytes", details={"limit": limit}
            )

    async def _input_lane(self) -> None:
        while True:
            request_id, action, model = await self.inputs.get()
            self.sent_input = True
            await self._run(request_id, action, model)

    # -- running -------------------------------------------------------------------------
    async def _run(self, request_id: Any, action: Operation, model: Any) -> None:
        try:
            output = await execute(self.services, action, model, locked=False)
            frames = self._answer(request_id, output)
        except AgentError as exc:
            frames = [_error_text(request_id, exc)]
        except Exception:
            LOG.exception("action %s failed on /ws", action.type)
            frames = [_error_text(request_id, AgentError("internal error (a bug; see the agent log)"))]
        finally:
            self.slots.release()
        self._send(frames)

    def _answer(self, request_id: Any, output: Output) -> list[Frame]:
        if isinstance(output, ImageResult) and not output.as_json:
            header = {
                "request_id": request_id,
                "success": True,
                "result": {
                    "format": output.format,
                    "width": output.width,
                    "height": output.height,
                    "screen_width": output.screen_width,
                    "screen_height": output.screen_height,
                },
                "binary": {"bytes": len(output.data), "content_type": output.content_type},
            }
            return [_json(header), output.data]
        return [_json({"request_id": request_id, "success": True, "result": result_json(output)})]

    def _answer_error(self, request_id: Any, exc: AgentError) -> None:
        self._send([_error_text(request_id, exc)])

    def _send(self, frames: Sequence[Frame]) -> None:
        try:
            self.outbox.put(frames)
        except SlowReader as exc:
            self._close_slow(str(exc))

    def _close_slow(self, why: str) -> None:
        if self.closing is None:
            LOG.warning("closing a /ws connection: slow reader (%s)", why)
            self.closing = f"slow reader: {why}"
            # Ends the reader loop; the transport goes even if the client reads nothing more.
            transport = self.request.transport
            if transport is not None:
                transport.abort()

    async def _release_input(self) -> None:
        """Leave no key or button held by this connection's input (like a /batch cut short)."""
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT), self.services.input_lock:
                await self.services.desktop.release_all()
        except Exception as exc:  # the display may be gone; nothing is held on a dead server
            LOG.warning("releasing held keys and buttons after /ws failed: %s", exc)

    # -- events --------------------------------------------------------------------------
    def _subscribe(
        self, request_id: Any, events: list[str] | None, after: int | None, *, answer: bool = True
    ) -> None:
        accept = event_filter(events)
        live = self.services.live
        if live is None:
            raise InvalidArgument("the event hub is not running on this agent")
        if self.subscription is not None:
            self.subscription.cancel()
        hub = live.hub
        self.subscription = asyncio.create_task(self._forward(hub.follow(after, accept)))
        if answer:
            result = {"subscribed": events or ["*"], "last_event_id": hub.last_id}
            self._send([_json({"request_id": request_id, "success": True, "result": result})])

    def _unsubscribe(self, request_id: Any) -> None:
        if self.subscription is not None:
            self.subscription.cancel()
            self.subscription = None
        self._send([_json({"request_id": request_id, "success": True, "result": {}})])

    async def _forward(self, events: Any) -> None:
        async with contextlib.aclosing(events):
            async for event in events:
                await self.outbox.put_when_room([event.model.model_dump_json(by_alias=True)])

    # -- writing -------------------------------------------------------------------------
    async def _write(self) -> None:
        while True:
            for frame in await self.outbox.get():
                try:
                    async with asyncio.timeout(SEND_TIMEOUT):
                        if isinstance(frame, bytes):
                            await self.ws.send_bytes(frame)
                        else:
                            await self.ws.send_str(frame)
                except TimeoutError:
                    self._close_slow(f"a frame took over {SEND_TIMEOUT:g} s to send")
                    return
                except ConnectionError:
                    return


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _error_text(request_id: Any, exc: AgentError) -> str:
    answer: dict[str, Any] = {
        "request_id": request_id,
        "success": False,
        "status": exc.status,
        "error": {"code": exc.code, "message": exc.message, "details": exc.details},
    }
    if exc.retry_after is not None:
        answer["retry_after"] = exc.retry_after
    return _json(answer)
