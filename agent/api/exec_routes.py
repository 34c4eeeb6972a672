"""Streaming exec and background processes: POST /exec/stream and /processes/*.

Streams are NDJSON (one JSON object per line) or, when the client asks for
``text/event-stream``, Server-Sent Events carrying the same objects. A client that goes away
is noticed even while the command is silent, and its command is killed (its group and cgroup).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from agent.actions.exec import (
    ExecRequest,
    ProcessDetail,
    ProcessInfo,
    ProcessList,
    ProcessStartRequest,
    SignalRequest,
    StdinRequest,
    exec_service,
)
from agent.actions.registry import validate
from agent.api.appkeys import SERVICES_KEY
from agent.api.body import read_json
from agent.api.streaming import (
    ERROR,
    NDJSON,
    SSE,
    EventWriter,
    cancel_on_disconnect,
    chunk_event,
    exit_event,
    json_answer,
    json_body,
)
from agent.errors import InvalidArgument
from agent.exec.output import decode_input, encode
from agent.exec.processes import ManagedProcess, follow, parse_signal
from agent.exec.runner import CommandSpec, bash_argv
from agent.exec.service import Chunk, Finished, Started
from agent.models.base import Success

LOG = logging.getLogger(__name__)

TAIL_BYTES = 4096


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
        try:
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
        except ConnectionResetError:  # the client went away mid-write; closing `events` kills the group
            LOG.info("stream client disconnected; ending its command")
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
    proc.write_stdin(data, req.eof)
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
        try:
            if offset < log.start:
                await writer.send({"type": "dropped", "from": offset, "to": log.start}, log.start)
            async for piece in follow(log, offset, wait=wait):
                end = piece.offset + len(piece.data)
                await writer.send(chunk_event(piece.stream, piece.data, piece.offset), end)
            if proc.exit is not None and log.closed:
                await writer.send(exit_event(proc.exit, offset=log.end), log.end)
            await writer.response.write_eof()
        except ConnectionResetError:
            pass  # the reader went away; the process is not affected
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
            "description": "The data is queued whole and reaches the process in order as it reads, or "
            "is refused whole: 413 when it is bigger than the stdin buffer (processes_stdin_max_bytes), "
            "409 when the process has not read enough of what was queued before for it to fit.",
            "requestBody": json_body(StdinRequest),
            "responses": {
                "200": json_answer(Success),
                "400": ERROR,
                "401": ERROR,
                "404": ERROR,
                "409": ERROR,
                "413": ERROR,
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
                    "description": "Resume from this byte offset (both streams; or SSE Last-Event-ID)",
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
