"""Request and result models of commands, background processes and their event streams."""

from __future__ import annotations

import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from agent.errors import InvalidArgument
from agent.exec.output import Encoding, decode_input
from agent.exec.runner import CommandSpec, bash_argv
from agent.models.base import Request, Result

NonEmptyStr = Annotated[str, Field(min_length=1)]
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_OUTPUT = 1 << 20
MAX_OUTPUT_CAP = 64 << 20


class CommandOptions(Request):
    """Options shared by every way of running a command."""

    cwd: str | None = Field(default=None, description="Working directory; default: the desktop user's home")
    env: dict[str, str | None] = Field(
        default_factory=dict,
        description="Variables merged over the desktop session's environment; null removes one",
    )
    stdin: str | None = Field(default=None, description="Data written to the command's stdin, then closed")
    stdin_encoding: Encoding = Field(default="utf-8", description="How `stdin` is encoded: utf-8 or base64")
    timeout_seconds: float = Field(
        default=DEFAULT_TIMEOUT,
        gt=0,
        description="Deadline; past it everything the command started (its process group and its "
        "cgroup, setsid children included) gets SIGTERM, then SIGKILL after 1 s. "
        "Capped by the agent's exec_max_timeout",
    )
    max_output_length: int = Field(
        default=DEFAULT_MAX_OUTPUT,
        ge=0,
        le=MAX_OUTPUT_CAP,
        description="Bytes of output kept per stream; the rest is read and dropped and `truncated` says so",
    )

    def stdin_bytes(self) -> bytes | None:
        if self.stdin is None:
            return None
        try:
            return decode_input(self.stdin, self.stdin_encoding)
        except (binascii.Error, ValueError):
            raise InvalidArgument("stdin: not valid base64", details={"field": "stdin"}) from None


class ExecRequest(CommandOptions):
    type: Literal["exec"] = "exec"
    command: NonEmptyStr | Annotated[list[str], Field(min_length=1)] = Field(
        description="A command line run by `bash -c`, or an argv list run directly (no shell)",
    )
    stream: bool = Field(
        default=False,
        description="Accepted for compatibility; POST /exec/stream streams the output as it comes",
    )

    def spec(self, *, max_output: int | None = None, timeout: float | None = None) -> CommandSpec:
        argv = bash_argv(self.command) if isinstance(self.command, str) else tuple(self.command)
        return CommandSpec(
            argv=argv,
            cwd=self.cwd,
            env=self.env,
            stdin=self.stdin_bytes(),
            timeout=timeout if timeout is not None else self.timeout_seconds,
            max_output=max_output if max_output is not None else self.max_output_length,
        )


class BashRequest(CommandOptions):
    """``script`` (ours) or ``command`` (seed 001's name for it): exactly one of them."""

    # The document says "at least one of the two"; the validator also refuses both.
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["script"]}, {"required": ["command"]}]}
    )

    type: Literal["bash"] = "bash"
    script: str | None = Field(default=None, description="A bash script; may span many lines", min_length=1)
    command: str | None = Field(
        default=None, description="The same as `script` (seed 001's name); give one of the two", min_length=1
    )

    @model_validator(mode="after")
    def _script_or_command(self) -> BashRequest:
        if (self.script is None) == (self.command is None):
            raise ValueError("give script (or its other name, command), not both")
        return self

    def spec(self) -> CommandSpec:
        return CommandSpec(
            argv=bash_argv(self.script or self.command or ""),
            cwd=self.cwd,
            env=self.env,
            stdin=self.stdin_bytes(),
            timeout=self.timeout_seconds,
            max_output=self.max_output_length,
        )


class PerStream(BaseModel):
    stdout: bool
    stderr: bool


class StreamEncodings(BaseModel):
    stdout: Encoding
    stderr: Encoding


class ExecResult(Result):
    stdout: str = Field(description="Standard output: text, or base64 when `encoding.stdout` says so")
    stderr: str = Field(description="Standard error: text, or base64 when `encoding.stderr` says so")
    exit_code: int = Field(description="The exit status; 128+N when killed by signal N (as in a shell)")
    signal: str | None = Field(description="Name of the signal that ended the command (SIGTERM, ...)")
    timed_out: bool
    truncated: bool = Field(description="Whether any output was cut at max_output_length")
    truncated_streams: PerStream = Field(description="Which streams went past max_output_length")
    encoding: StreamEncodings = Field(description="utf-8, or base64 for output that is not UTF-8")
    duration_ms: float
    pid: int | None = Field(description="The command's process id; null when it could not start")


class DebugOptions(Request):
    """The ``debug`` object of seed 002's ``debug`` action: a command and how to run it."""

    command: NonEmptyStr = Field(description="A command line run by `bash -c`")
    cwd: str | None = None
    env: dict[str, str | None] = Field(default_factory=dict)
    max_output_length: int = Field(default=DEFAULT_MAX_OUTPUT, ge=0, le=MAX_OUTPUT_CAP)
    timeout_seconds: float = Field(default=DEFAULT_TIMEOUT, gt=0)
    stream: bool = Field(default=False, description="Accepted; the output is returned when done")


class DebugRequest(Request):
    """``{"type": "debug", "debug": {"command": ...}}``: the same as ``exec``, as other products
    spell it in their tagged action unions. Only through /actions and /batch."""

    type: Literal["debug"] = "debug"
    debug: DebugOptions


class ProcessStartRequest(CommandOptions):
    type: Literal["process_start"] = "process_start"
    command: NonEmptyStr | Annotated[list[str], Field(min_length=1)] = Field(
        description="A command line run by `bash -c`, or an argv list"
    )
    timeout_seconds: float | None = Field(  # type: ignore[assignment]
        default=None, gt=0, description="Deadline for everything the process started; default: none"
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


class ProcessRequest(Request):
    """A request about one background process, named in the path."""

    id: str = Field(min_length=1, description="The process id from POST /processes")


class ProcessListRequest(Request):
    type: Literal["process_list"] = "process_list"


class ProcessGetRequest(ProcessRequest):
    type: Literal["process_get"] = "process_get"


class ProcessOutputRequest(ProcessRequest):
    type: Literal["process_output"] = "process_output"
    offset: int | None = Field(
        default=None,
        ge=0,
        description="Resume from this byte offset (both streams); default: Last-Event-ID, else 0",
    )
    follow: bool = Field(default=True, description="Keep streaming new output until the process exits")
    last_event_id: int | None = Field(
        default=None, ge=0, description="SSE resumption: the offset after the last event received"
    )


class StdinRequest(ProcessRequest):
    type: Literal["process_stdin"] = "process_stdin"
    data: str = Field(default="", description="Bytes to write, as text or base64")
    encoding: Encoding = "utf-8"
    eof: bool = Field(default=False, description="Close stdin after writing")


class SignalRequest(ProcessRequest):
    type: Literal["process_signal"] = "process_signal"
    signal: str | int = Field(default="TERM", description="TERM, SIGKILL, INT, 9, ...")
    group: bool = Field(
        default=True,
        description="Signal everything the process started (its process group and cgroup), not only the leader",
    )


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


# ----- stream events: one per NDJSON line (or per SSE ``data:``) --------------------------------


class StreamEvent(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class StartEvent(StreamEvent):
    type: Literal["start"] = "start"
    pid: int | None = Field(description="The command's process id")


class OutputEvent(StreamEvent):
    type: Literal["stdout", "stderr"]
    data: str = Field(description="The bytes, as text or base64 (see encoding)")
    encoding: Encoding


class OffsetOutputEvent(OutputEvent):
    offset: int = Field(description="Where the data starts in the process's output (both streams)")


class DroppedEvent(StreamEvent):
    type: Literal["dropped"] = "dropped"
    from_: int = Field(alias="from", description="The offset asked for")
    to: int = Field(description="The oldest offset still held")


class ExitEvent(StreamEvent):
    type: Literal["exit"] = "exit"
    exit_code: int
    signal: str | None
    timed_out: bool
    duration_ms: float


class CommandExitEvent(ExitEvent):
    truncated: bool = Field(description="Whether any output was cut at max_output_length")
    truncated_streams: PerStream = Field(description="Which streams went past max_output_length")
    stdout_bytes: int
    stderr_bytes: int


class ProcessExitEvent(ExitEvent):
    offset: int = Field(description="The offset after the last output byte")


class ExecEvent(
    RootModel[Annotated[StartEvent | OutputEvent | CommandExitEvent, Field(discriminator="type")]]
):
    """An event of POST /exec/stream: start, then stdout/stderr chunks, then exit."""


class ProcessEvent(
    RootModel[Annotated[OffsetOutputEvent | DroppedEvent | ProcessExitEvent, Field(discriminator="type")]]
):
    """An event of GET /processes/{id}/output: dropped (when the offset is gone), chunks, exit."""
