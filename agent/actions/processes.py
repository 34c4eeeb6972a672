"""Background processes: start, list, describe, feed stdin, signal, and read their output.

JSON operations are also actions (/actions, /batch); the output stream is REST only.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from agent.actions.capabilities import Capability
from agent.actions.exec import exec_service
from agent.actions.outputs import Event, EventStream
from agent.actions.registry import BULK_BODY, REGISTRY
from agent.errors import InvalidArgument
from agent.exec.output import decode_input, encode
from agent.exec.processes import ManagedProcess, follow, parse_signal
from agent.exec.runner import CommandSpec, bash_argv
from agent.models.base import Success
from agent.models.exec import (
    DroppedEvent,
    OffsetOutputEvent,
    ProcessDetail,
    ProcessEvent,
    ProcessExitEvent,
    ProcessGetRequest,
    ProcessInfo,
    ProcessList,
    ProcessListRequest,
    ProcessOutputRequest,
    ProcessStartRequest,
    SignalRequest,
    StdinRequest,
    StreamEncodings,
)
from agent.services import Services

TAIL_BYTES = 4096


def process_info(proc: ManagedProcess) -> ProcessInfo:
    return ProcessInfo.model_validate(_info_fields(proc))


def _info_fields(proc: ManagedProcess) -> dict[str, object]:
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


async def start_process(services: Services, req: ProcessStartRequest) -> ProcessInfo:
    command = req.command
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
    return process_info(await exec_service(services).processes.launch(spec, command))


async def list_processes(services: Services, req: ProcessListRequest) -> ProcessList:
    return ProcessList(processes=[process_info(p) for p in exec_service(services).processes.all()])


async def get_process(services: Services, req: ProcessGetRequest) -> ProcessDetail:
    proc = exec_service(services).processes.get(req.id)
    stdout, stdout_encoding = encode(proc.log.tail("stdout", TAIL_BYTES))
    stderr, stderr_encoding = encode(proc.log.tail("stderr", TAIL_BYTES))
    return ProcessDetail.model_validate(
        {
            **_info_fields(proc),
            "stdout_tail": stdout,
            "stderr_tail": stderr,
            "encoding": StreamEncodings(stdout=stdout_encoding, stderr=stderr_encoding),
        }
    )


async def write_stdin(services: Services, req: StdinRequest) -> Success:
    proc = exec_service(services).processes.get(req.id)
    try:
        data = decode_input(req.data, req.encoding)
    except ValueError:
        raise InvalidArgument("data: not valid base64", details={"field": "data"}) from None
    proc.write_stdin(data, req.eof)
    return Success()


async def signal_process(services: Services, req: SignalRequest) -> Success:
    proc = exec_service(services).processes.get(req.id)
    proc.send_signal(parse_signal(req.signal), req.group)
    return Success()


async def process_output(services: Services, req: ProcessOutputRequest) -> EventStream:
    proc = exec_service(services).processes.get(req.id)
    offset = req.offset if req.offset is not None else (req.last_event_id or 0)
    log = proc.log

    async def events() -> AsyncGenerator[Event, None]:
        if offset < log.start:
            yield Event(DroppedEvent.model_validate({"from": offset, "to": log.start}), log.start)
        async for piece in follow(log, offset, wait=req.follow):
            text, encoding = encode(piece.data)
            chunk = OffsetOutputEvent(type=piece.stream, data=text, encoding=encoding, offset=piece.offset)
            yield Event(chunk, piece.offset + len(piece.data))
        if proc.exit is not None and log.closed:
            exit_ = proc.exit
            yield Event(
                ProcessExitEvent(
                    exit_code=exit_.exit_code,
                    signal=exit_.signal,
                    timed_out=exit_.timed_out,
                    duration_ms=exit_.duration_ms,
                    offset=log.end,
                ),
                log.end,
            )

    stream = events()
    return EventStream(stream, stream.aclose)


_PROCESS = "/processes/{id}"
_COMMON = {"tag": "exec", "capability": Capability.EXEC}
REGISTRY.add(
    "process_start",
    ProcessStartRequest,
    start_process,
    summary="Start a background process",
    route="/processes",
    result=ProcessInfo,
    ok="The process (a missing program is an exited process with exit code 127)",
    errors=(400, 401, 429),
    max_body=BULK_BODY,  # stdin
    **_COMMON,
)
REGISTRY.add(
    "process_list",
    ProcessListRequest,
    list_processes,
    summary="Running and recently finished background processes",
    route="/processes",
    method="GET",
    result=ProcessList,
    errors=(401,),
    **_COMMON,
)
REGISTRY.add(
    "process_get",
    ProcessGetRequest,
    get_process,
    summary="One background process: state, exit status, output tail",
    route=_PROCESS,
    method="GET",
    result=ProcessDetail,
    errors=(401, 404),
    **_COMMON,
)
REGISTRY.add(
    "process_stdin",
    StdinRequest,
    write_stdin,
    summary="Write to a background process's stdin (and optionally close it)",
    description="The data is queued whole and reaches the process in order as it reads, or "
    "is refused whole: 413 when it is bigger than the stdin buffer (processes_stdin_max_bytes), "
    "409 when the process has not read enough of what was queued before for it to fit.",
    route=f"{_PROCESS}/stdin",
    result=Success,
    errors=(400, 401, 404, 409, 413),
    max_body=BULK_BODY,
    **_COMMON,
)
REGISTRY.add(
    "process_signal",
    SignalRequest,
    signal_process,
    summary="Send a signal to a background process's group (or only its leader)",
    route=f"{_PROCESS}/signal",
    result=Success,
    errors=(400, 401, 404, 409),
    **_COMMON,
)
REGISTRY.add(
    "process_output",
    ProcessOutputRequest,
    process_output,
    summary="A background process's output from an offset, following it until it exits",
    route=f"{_PROCESS}/output",
    method="GET",
    result=ProcessEvent,
    media="events",
    ok="A stream of events: NDJSON, or SSE when the request accepts text/event-stream",
    errors=(400, 401, 404),
    headers={"Last-Event-ID": "last_event_id"},
    cancel_on_disconnect=True,
    actions=False,
    **_COMMON,
)
