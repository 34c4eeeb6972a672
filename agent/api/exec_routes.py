"""Streaming exec and background processes: POST /exec/stream and /processes/*.

Streams are NDJSON (one JSON object per line) or, when the client asks for
``text/event-stream``, Server-Sent Events carrying the same objects. A client that goes away
is noticed even while the command is silent, and its command's process group is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from agent.actions.exec import (
    DEFAULT_MAX_OUTPUT,
    MAX_OUTPUT_CAP,
    CommandOptions,
    ExecRequest,
    StreamEncodings,
    exec_service,
)
from agent.actions.registry import validate
from agent.api.action_routes import read_json
from agent.api.keys import SERVICES_KEY
from agent.errors import InvalidArgument
from agent.exec.output import Encoding, decode_input, encode
from agent.exec.processes import ManagedProcess, follow, parse_signal
from agent.exec.runner import CommandSpec, Exit, bash_argv
from agent.exec.service import Chunk, Finished, Started
from agent.models.base import Request, Result, Success

DISCONNECT_POLL = 0.2
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
TAIL_BYTES = 4096


# ----- models ---------------------------------------------------------------------------------


class ProcessStartRequest(CommandOptions):
    command: str | list[str] = Field(description="A command line run by `bash -c`, or an argv list")
    timeout_seconds: float | None = Field(  # type: ignore[assignment]
        default=None, gt=0, description="Deadline for the whole process group; default: none"
    )
    max_output_length: int = Field(
        default=DEFAULT_MAX_OUTPUT,
        ge=0,
        le=MAX_OUTPUT_CAP,
        description="Bytes of the most recent output kept (both streams together)",
    )
    keep_stdin_open: bool = Field(
        default=True, description="Keep stdin open after `stdin` for POST /processes/{id}/stdin"
    )


class StdinRequest(Request):
    data: str = Field(default="", description="Bytes to write, as text or base64")
    encoding: Encoding = "utf-8"
    eof: bool = Field(default=False, description="Close stdin after writing")


class SignalRequest(Request):
    signal: str | int = Field(default="TERM", description="TERM, SIGKILL, INT, 9, ...")
    group: bool = Field(default=True, description="Signal the whole process group, not only the leader")


class ProcessInfo(Result):
    id: str
    pid: int | None
    command: str | list[str]
    state: Literal["running", "exited"]
    exit_code: int | None
    signal: str | None
    timed_out: bool
    started_at: float = Field(description="Seconds since the epoch")
    ended_at: float | None
    duration_ms: float | None
    stdin_open: bool
    stdout_bytes: int
    stderr_bytes: int
    output_offset: int = Field(description="Offset after the newest output byte (both streams)")


class ProcessDetail(ProcessInfo):
    stdout_tail: str = Field(description="The last 4 KiB of stdout held")
    stderr_tail: str = Field(description="The last 4 KiB of stderr held")
    encoding: StreamEncodings


class ProcessList(Result):
    processes: list[ProcessInfo]


def process_info(proc: ManagedProcess) -> dict[str, Any]:
    exit_ = proc.exit
    return {
        "id": proc.id,
        "pid": proc.pid,
        "command": proc.command,
        "state": proc.state,
        "exit_code": None if exit_ is None else exit_.exit_code,
        "signal": None if exit_ is None else exit_.signal,
        "timed_out": False if exit_ is None else exit_.timed_out,
        "started_at": proc.started_at,
        "ended_at": proc.ended_at,
        "duration_ms": None if exit_ is None else exit_.duration_ms,
        "stdin_open": proc.stdin_open,
        "stdout_bytes": proc.log.totals["stdout"],
        "stderr_bytes": proc.log.totals["stderr"],
        "output_offset": proc.log.end,
    }


# ----- streaming helpers ----------------------------------------------------------------------


class EventWriter:
    """Writes event objects as NDJSON lines or SSE events on a prepared response."""

    def __init__(self, response: web.StreamResponse, sse: bool) -> None:
        self.response = response
        self.sse = sse

    @staticmethod
    async def open(request: web.Request) -> EventWriter:
        sse = SSE in request.headers.get("Accept", "")
        response = web.StreamResponse(
            headers={
                "Content-Type": SSE if sse else NDJSON,
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        from agent.api.middleware import REQUEST_ID_HEADER
        from agent.logs import REQUEST_ID

        request_id = REQUEST_ID.get()
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        await response.prepare(request)
        return EventWriter(response, sse)

    async def send(self, event: dict[str, Any], event_id: int | None = None) -> None:
        data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        if self.sse:
            prefix = f"id: {event_id}\n" if event_id is not None else ""
            text = f"{prefix}event: {event['type']}\ndata: {data}\n\n"
        else:
            text = data + "\n"
        await self.response.write(text.encode())


def chunk_event(stream: str, data: bytes, offset: int | None = None) -> dict[str, Any]:
    text, encoding = encode(data)
    event: dict[str, Any] = {"type": stream, "data": text, "encoding": encoding}
    if offset is not None:
        event["offset"] = offset
    return event


def exit_event(exit_: Exit, **extra: Any) -> dict[str, Any]:
    return {
        "type": "exit",
        "exit_code": exit_.exit_code,
        "signal": exit_.signal,
        "timed_out": exit_.timed_out,
        "duration_ms": exit_.duration_ms,
        **extra,
    }


@contextlib.asynccontextmanager
async def cancel_on_disconnect(request: web.Request) -> AsyncIterator[None]:
    """Cancel this handler when the client goes away, even while nothing is being written."""
    handler = asyncio.current_task()
    assert handler is not None

    async def watch() -> None:
        while True:
            await asyncio.sleep(DISCONNECT_POLL)
            transport = request.transport
            if transport is None or transport.is_closing():
                handler.cancel()
                return

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()


# ----- handlers -------------------------------------------------------------------------------


async def exec_stream(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    body["type"] = "exec"
    req = validate(ExecRequest, body)
    # A stream is read as it comes: unlimited unless the caller sets a cap.
    spec = req.spec()
    if "max_output_length" not in req.model_fields_set:
        spec = dataclasses.replace(spec, max_output=None)
    events = exec_service(request.app[SERVICES_KEY]).stream(spec)
    async with contextlib.aclosing(events), cancel_on_disconnect(request):
        first = await anext(events)  # 429 and bad cwd are still plain JSON errors here
        assert isinstance(first, Started)
        writer = await EventWriter.open(request)
        await writer.send({"type": "start", "pid": first.pid})
        async for event in events:
            if isinstance(event, Chunk):
                await writer.send(chunk_event(event.stream, event.data))
            elif isinstance(event, Finished):
                await writer.send(
                    exit_event(
                        event.exit,
                        truncated={"stdout": event.stdout_truncated, "stderr": event.stderr_truncated},
                        stdout_bytes=event.stdout_bytes,
                        stderr_bytes=event.stderr_bytes,
                    )
                )
        await writer.response.write_eof()
        return writer.response


async def start_process(request: web.Request) -> web.Response:
    req = validate(ProcessStartRequest, await read_json(request))
    command = req.command
    if isinstance(command, list) and not command:
        raise InvalidArgument("command: empty", details={"field": "command"})
    argv = bash_argv(command) if isinstance(command, str) else tuple(command)
    spec = CommandSpec(
        argv=argv,
        cwd=req.cwd,
        env=req.env,
        stdin=req.stdin_bytes(),
        timeout=req.timeout_seconds,
        max_output=req.max_output_length,
        keep_stdin_open=req.keep_stdin_open,
    )
    proc = await exec_service(request.app[SERVICES_KEY]).processes.launch(spec, command)
    return web.json_response(process_info(proc))


async def list_processes(request: web.Request) -> web.Response:
    procs = exec_service(request.app[SERVICES_KEY]).processes.all()
    return web.json_response({"processes": [process_info(p) for p in procs]})


async def get_process(request: web.Request) -> web.Response:
    proc = exec_service(request.app[SERVICES_KEY]).processes.get(request.match_info["id"])
    stdout, stdout_encoding = encode(proc.log.tail("stdout", TAIL_BYTES))
    stderr, stderr_encoding = encode(proc.log.tail("stderr", TAIL_BYTES))
    detail = process_info(proc)
    detail.update(
        stdout_tail=stdout,
        stderr_tail=stderr,
        encoding={"stdout": stdout_encoding, "stderr": stderr_encoding},
    )
    return web.json_response(detail)


async def write_stdin(request: web.Request) -> web.Response:
    proc = exec_service(request.app[SERVICES_KEY]).processes.get(request.match_info["id"])
    req = validate(StdinRequest, await read_json(request))
    try:
        data = decode_input(req.data, req.encoding)
    except ValueError:
        raise InvalidArgument("data: not valid base64", details={"field": "data"}) from None
    await proc.write_stdin(data, req.eof)
    return web.json_response(Success().model_dump())


async def signal_process(request: web.Request) -> web.Response:
    proc = exec_service(request.app[SERVICES_KEY]).processes.get(request.match_info["id"])
    req = validate(SignalRequest, await read_json(request))
    proc.send_signal(parse_signal(req.signal), req.group)
    return web.json_response(Success().model_dump())


async def process_output(request: web.Request) -> web.StreamResponse:
    proc = exec_service(request.app[SERVICES_KEY]).processes.get(request.match_info["id"])
    offset = _int_query(request, "offset", request.headers.get("Last-Event-ID", "0"))
    wait = request.query.get("follow", "true").lower() not in {"0", "false", "no"}
    log = proc.log
    async with cancel_on_disconnect(request):
        writer = await EventWriter.open(request)
        if offset < log.start:
            await writer.send({"type": "dropped", "from": offset, "to": log.start}, log.start)
        async for piece in follow(log, offset, wait=wait):
            end = piece.offset + len(piece.data)
            await writer.send(chunk_event(piece.stream, piece.data, piece.offset), end)
        if proc.exit is not None and log.closed:
            await writer.send(exit_event(proc.exit, offset=log.end), log.end)
        await writer.response.write_eof()
        return writer.response


def _int_query(request: web.Request, name: str, default: str) -> int:
    raw = request.query.get(name, default) or "0"
    try:
        value = int(raw)
    except ValueError:
        raise InvalidArgument(f"{name}: expected an integer, got {raw!r}", details={"field": name}) from None
    if value < 0:
        raise InvalidArgument(f"{name}: must be >= 0", details={"field": name})
    return value


def add_routes(app: web.Application) -> None:
    routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
        ("POST", "/exec/stream", exec_stream),
        ("POST", "/processes", start_process),
        ("GET", "/processes", list_processes),
        ("GET", "/processes/{id}", get_process),
        ("POST", "/processes/{id}/stdin", write_stdin),
        ("POST", "/processes/{id}/signal", signal_process),
        ("GET", "/processes/{id}/output", process_output),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler, name=handler.__name__)


# ----- OpenAPI --------------------------------------------------------------------------------


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` inlined (route modules add paths, not components)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": inline_schema(model)}}}


def json_answer(model: type[BaseModel], description: str = "Done") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": inline_schema(model)}}}


ERROR = {"$ref": "#/components/responses/Error"}
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "description": "One event per NDJSON line (or per SSE `data:`): `start` {pid}; `stdout`/`stderr` "
    "{data, encoding (utf-8 or base64), offset (process output only)}; `dropped` {from, to} when the "
    "requested offset is no longer held; `exit` {exit_code, signal, timed_out, duration_ms, ...}.",
    "properties": {
        "type": {"type": "string", "enum": ["start", "stdout", "stderr", "dropped", "exit"]},
        "pid": {"type": ["integer", "null"]},
        "data": {"type": "string"},
        "encoding": {"type": "string", "enum": ["utf-8", "base64"]},
        "offset": {"type": "integer"},
        "exit_code": {"type": "integer"},
        "signal": {"type": ["string", "null"]},
        "timed_out": {"type": "boolean"},
        "truncated": {"type": "object"},
        "duration_ms": {"type": "number"},
    },
}
EVENTS = {
    "description": "A stream of events: NDJSON, or SSE when the request accepts text/event-stream",
    "content": {NDJSON: {"schema": EVENT_SCHEMA}, SSE: {"schema": {"type": "string"}}},
}
ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
TAGS = ["exec"]

OPENAPI_PATHS: dict[str, Any] = {
    "/exec/stream": {
        "post": {
            "operationId": "exec_stream",
            "tags": TAGS,
            "summary": "Run a command and stream its output as it comes; disconnecting kills it",
            "description": "Same body as POST /exec. Output is unlimited unless max_output_length is given.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExecRequest"}}},
            },
            "responses": {"200": EVENTS, "400": ERROR, "401": ERROR, "429": ERROR},
        }
    },
    "/processes": {
        "post": {
            "operationId": "process_start",
            "tags": TAGS,
            "summary": "Start a background process",
            "requestBody": json_body(ProcessStartRequest),
            "responses": {
                "200": json_answer(
                    ProcessInfo, "The process (a missing program is an exited process with exit code 127)"
                ),
                "400": ERROR,
                "401": ERROR,
                "429": ERROR,
            },
        },
        "get": {
            "operationId": "process_list",
            "tags": TAGS,
            "summary": "Running and recently finished background processes",
            "responses": {"200": json_answer(ProcessList), "401": ERROR},
        },
    },
    "/processes/{id}": {
        "get": {
            "operationId": "process_get",
            "tags": TAGS,
            "parameters": [ID_PARAM],
            "summary": "One background process: state, exit status, output tail",
            "responses": {"200": json_answer(ProcessDetail), "401": ERROR, "404": ERROR},
        }
    },
    "/processes/{id}/stdin": {
        "post": {
            "operationId": "process_stdin",
            "tags": TAGS,
            "parameters": [ID_PARAM],
            "summary": "Write to a background process's stdin (and optionally close it)",
            "requestBody": json_body(StdinRequest),
            "responses": {
                "200": json_answer(Success),
                "400": ERROR,
                "401": ERROR,
                "404": ERROR,
                "409": ERROR,
                "504": ERROR,
            },
        }
    },
    "/processes/{id}/signal": {
        "post": {
            "operationId": "process_signal",
            "tags": TAGS,
            "parameters": [ID_PARAM],
            "summary": "Send a signal to a background process's group (or only its leader)",
            "requestBody": json_body(SignalRequest),
            "responses": {
                "200": json_answer(Success),
                "400": ERROR,
                "401": ERROR,
                "404": ERROR,
                "409": ERROR,
            },
        }
    },
    "/processes/{id}/output": {
        "get": {
            "operationId": "process_output",
            "tags": TAGS,
            "summary": "A background process's output from an offset, following it until it exits",
            "parameters": [
                ID_PARAM,
                {
                    "name": "offset",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0},
                    "description": "Resume from this byte offset (both streams counted; SSE Last-Event-ID too)",
                },
                {
                    "name": "follow",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "boolean", "default": True},
                    "description": "Keep streaming new output until the process exits",
                },
            ],
            "responses": {"200": EVENTS, "400": ERROR, "401": ERROR, "404": ERROR},
        }
    },
}
