"""Commands: ``exec`` (a command string run by bash, or an argv list), ``bash`` (a script),
``debug`` (seed 002's spelling) and ``exec_stream`` (the output as it comes, REST only).

Background processes are in ``agent.actions.processes``; the models in ``agent.models.exec``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from agent.actions.capabilities import Capability
from agent.actions.outputs import Event, EventStream
from agent.actions.registry import BULK_BODY, REGISTRY
from agent.errors import Unavailable
from agent.exec.output import encode
from agent.exec.runner import CommandResult, CommandSpec, bash_argv
from agent.exec.service import Chunk, ExecService, Finished, Started
from agent.models.exec import (
    BashRequest,
    CommandExitEvent,
    DebugRequest,
    ExecEvent,
    ExecRequest,
    ExecResult,
    OutputEvent,
    PerStream,
    StartEvent,
    StreamEncodings,
)
from agent.services import Services


def exec_result(result: CommandResult) -> ExecResult:
    stdout, stdout_encoding = encode(result.stdout)
    stderr, stderr_encoding = encode(result.stderr)
    return ExecResult(
        stdout=stdout,
        stderr=stderr,
        exit_code=result.exit.exit_code,
        signal=result.exit.signal,
        timed_out=result.exit.timed_out,
        truncated=result.stdout_truncated or result.stderr_truncated,
        truncated_streams=PerStream(stdout=result.stdout_truncated, stderr=result.stderr_truncated),
        encoding=StreamEncodings(stdout=stdout_encoding, stderr=stderr_encoding),
        duration_ms=result.exit.duration_ms,
        pid=result.pid,
    )


async def run_debug(services: Services, req: DebugRequest) -> ExecResult:
    options = req.debug
    spec = CommandSpec(
        argv=bash_argv(options.command),
        cwd=options.cwd,
        env=options.env,
        timeout=options.timeout_seconds,
        max_output=options.max_output_length,
    )
    return exec_result(await exec_service(services).run(spec))


def exec_service(services: Services) -> ExecService:
    """The command service (its capability was checked from the declaration)."""
    if services.exec is None:
        raise Unavailable("running commands is not available in this agent")
    return services.exec


async def run_exec(services: Services, req: ExecRequest) -> ExecResult:
    return exec_result(await exec_service(services).run(req.spec()))


async def run_bash(services: Services, req: BashRequest) -> ExecResult:
    return exec_result(await exec_service(services).run(req.spec()))


async def exec_stream(services: Services, req: ExecRequest) -> EventStream:
    """The command's events as they come; errors before it starts (429, a bad cwd) are raised here."""
    spec = req.spec()
    if "max_output_length" not in req.model_fields_set:  # a stream is read as it comes: no cap
        spec = dataclasses.replace(spec, max_output=None)
    events = exec_service(services).stream(spec)
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    assert isinstance(first, Started)

    async def render() -> AsyncIterator[Event]:
        yield Event(StartEvent(pid=first.pid))
        async for event in events:
            if isinstance(event, Chunk):
                text, encoding = encode(event.data)
                yield Event(OutputEvent(type=event.stream, data=text, encoding=encoding))
            elif isinstance(event, Finished):
                yield Event(
                    CommandExitEvent(
                        exit_code=event.exit.exit_code,
                        signal=event.exit.signal,
                        timed_out=event.exit.timed_out,
                        duration_ms=event.exit.duration_ms,
                        truncated=event.stdout_truncated or event.stderr_truncated,
                        truncated_streams=PerStream(
                            stdout=event.stdout_truncated, stderr=event.stderr_truncated
                        ),
                        stdout_bytes=event.stdout_bytes,
                        stderr_bytes=event.stderr_bytes,
                    )
                )

    return EventStream(render(), events.aclose)


REGISTRY.add(
    "exec",
    ExecRequest,
    run_exec,
    summary="Run a command (bash command line or argv list) and return its output and exit status",
    route="/exec",
    result=ExecResult,
    tag="exec",
    cancel_on_disconnect=True,
    capability=Capability.EXEC,
    max_body=BULK_BODY,  # stdin
)
REGISTRY.add(
    "exec_sync",
    ExecRequest,
    run_exec,
    summary="The same as POST /exec (seed 002's path for it)",
    route="/exec/sync",
    result=ExecResult,
    tag="exec",
    cancel_on_disconnect=True,
    capability=Capability.EXEC,
    actions=False,
    max_body=BULK_BODY,  # stdin
)
REGISTRY.add(
    "bash",
    BashRequest,
    run_bash,
    summary="Run a multi-line bash script and return its output and exit status",
    route="/bash",
    result=ExecResult,
    tag="exec",
    cancel_on_disconnect=True,
    capability=Capability.EXEC,
    max_body=BULK_BODY,  # stdin
)
REGISTRY.add(
    "debug",
    DebugRequest,
    run_debug,
    summary="Run a command given as {debug: {command, cwd, env, timeout_seconds, ...}} (seed 002's shape)",
    result=ExecResult,
    tag="exec",
    cancel_on_disconnect=True,
    capability=Capability.EXEC,
    max_body=BULK_BODY,  # stdin
)
REGISTRY.add(
    "exec_stream",
    ExecRequest,
    exec_stream,
    summary="Run a command and stream its output as it comes; disconnecting kills it",
    description="Same body as POST /exec. Output is unlimited unless max_output_length is given.",
    route="/exec/stream",
    result=ExecEvent,
    media="events",
    ok="A stream of events: NDJSON, or SSE when the request accepts text/event-stream",
    errors=(400, 401, 429),
    tag="exec",
    cancel_on_disconnect=True,
    capability=Capability.EXEC,
    actions=False,
    max_body=BULK_BODY,
)
