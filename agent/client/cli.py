"""``computer-agent screenshot|click|type|key|windows|tree|find|exec|cp|wait-for|action ...``: the
SDK from a shell.

The agent is ``--url``/``--token-file``, else COMPUTER_AGENT_URL and COMPUTER_AGENT_TOKEN_FILE
(or COMPUTER_AGENT_TOKEN); these options go before or after the subcommand. Output is for people
by default and JSON with ``--json`` (an error, ours or the agent's, is then the JSON envelope on
stderr). Exit status: 0 done, 1 the agent answered an error (its code and message on stderr), 2 a
usage error (bad arguments, a local file or token file that cannot be read or written), 3 the
agent could not be reached, 4 a negative answer (``wait-for``'s condition did not hold in time,
``find`` matched nothing); ``exec`` exits with the command's own status.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.client.errors import AgentError, AgentUnreachable

if TYPE_CHECKING:  # the SDK is loaded when a client command runs, not when the parser is built
    from pydantic import BaseModel

    from agent.client.sdk import Agent

VM_PREFIX = "vm:"
EXIT_AGENT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_NOT_MET = 4  # a negative answer: wait-for's condition did not hold in time, find found nothing
WAIT_FOR_DEFAULT_S = 10.0  # the server's default condition timeout
WAIT_FOR_MARGIN_S = 30.0  # the HTTP answer's allowance beyond the condition's timeout
Command = Callable[["Agent", argparse.Namespace], int]


def _client_flags(
    parser: argparse.ArgumentParser, *, top_level: bool = False, http_timeout: bool = True
) -> None:
    """The target and output options. On ``computer-agent`` itself they carry the defaults; on a
    subcommand they default to nothing (SUPPRESS), so ``computer-agent --url U click 1 1`` keeps
    the value given before the subcommand and one given after it wins."""

    def default(value: Any) -> Any:
        return value if top_level else argparse.SUPPRESS

    parser.add_argument("--url", default=default(None), help="the agent's URL (default: $COMPUTER_AGENT_URL)")
    parser.add_argument(
        "--token-file",
        default=default(None),
        help="file holding the bearer token (default: $COMPUTER_AGENT_TOKEN_FILE)",
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print the answer as JSON (for scripts)"
    )
    if http_timeout:  # wait-for's own --timeout is its condition's (the HTTP one follows from it)
        parser.add_argument(
            "--timeout", type=float, default=default(120.0), help="seconds to wait for an answer"
        )


def add_global_flags(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--token-file``, ``--json``, ``--timeout`` before the subcommand."""
    _client_flags(parser, top_level=True)


def _fail(args: argparse.Namespace, code: str, message: str, status: int, **details: Any) -> int:
    """Report an error on stderr (the JSON envelope with --json, as the agent's) and exit ``status``."""
    if getattr(args, "json", False):
        envelope = {"error": {"code": code, "message": message, "details": details}, "request_id": None}
        print(json.dumps(envelope), file=sys.stderr)
    else:
        print(f"computer-agent: {message}", file=sys.stderr)
    return status


def _print_json(value: Any) -> None:
    if hasattr(value, "model_dump_json"):  # a result model
        print(value.model_dump_json(by_alias=True, exclude_none=True))
    else:
        print(json.dumps(value))


def _done(args: argparse.Namespace, result: BaseModel, human: str) -> int:
    if args.json:
        _print_json(result)
    elif human:
        print(human)
    return 0


# ----- commands -------------------------------------------------------------------------------------


def _screenshot(agent: Agent, args: argparse.Namespace) -> int:
    shot = agent.screenshot(format=args.format, scale=args.scale, cursor=args.cursor or None)
    output = args.output or f"screenshot.{shot.format}"
    if output == "-":
        sys.stdout.buffer.write(shot.data)
        return 0
    shot.save(output)
    summary = {"path": output, "format": shot.format, "width": shot.width, "height": shot.height}
    if args.json:
        _print_json(summary)
    else:
        print(f"{output}: {shot.width}x{shot.height} {shot.format}, {len(shot.data)} bytes")
    return 0


def _click(agent: Agent, args: argparse.Namespace) -> int:
    return _done(args, agent.click(args.x, args.y, button=args.button), "")


def _type(agent: Agent, args: argparse.Namespace) -> int:
    return _done(args, agent.type(args.text, delay_ms=args.delay_ms), "")


def _key(agent: Agent, args: argparse.Namespace) -> int:
    return _done(args, agent.key(args.spec), "")


def _windows(agent: Agent, args: argparse.Namespace) -> int:
    listing = agent.list_windows()
    rows = [
        f"{w.id:>10}  {'*' if w.focused else ' '} {w.width}x{w.height}+{w.x}+{w.y}  {w.wm_class}  {w.title}"
        for w in listing.windows
    ]
    return _done(args, listing, "\n".join(rows))


def _tree(agent: Agent, args: argparse.Namespace) -> int:
    if args.json:
        _print_json(agent.accessibility_tree(app=args.app, window=args.window, max_depth=args.depth))
        return 0
    outline = agent.accessibility_tree(app=args.app, window=args.window, max_depth=args.depth, format="text")
    print(outline.text or "")
    return 0


def _find(agent: Agent, args: argparse.Namespace) -> int:
    found = agent.accessibility_find(role=args.role, name=args.name, app=args.app)
    rows = []
    for node in found.nodes:
        where = f" at {node.center.x},{node.center.y}" if node.center is not None else " (off screen)"
        rows.append(f"{node.id}  {node.role}  {node.name!r}{where}")
    if not found.nodes:
        wanted = ", ".join(
            f"{k}={v!r}" for k, v in (("role", args.role), ("name", args.name), ("app", args.app)) if v
        )
        if args.json:
            _print_json(found)
        else:
            print(f"computer-agent find: no element matches {wanted or 'these options'}", file=sys.stderr)
        return EXIT_NOT_MET
    return _done(args, found, "\n".join(rows))


def _exec(agent: Agent, args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        return _fail(args, "USAGE", "exec: give a command after --", EXIT_USAGE)
    exit_code = 0
    for event in agent.exec_stream(command, cwd=args.cwd, timeout_seconds=args.timeout_seconds):
        if args.json:
            _print_json(event)
            sys.stdout.flush()
        if event.type in ("stdout", "stderr") and not args.json:
            data = event.data
            raw = base64.b64decode(data) if event.encoding == "base64" else data.encode()
            stream = sys.stdout if event.type == "stdout" else sys.stderr
            stream.buffer.write(raw)
            stream.flush()
        if event.type == "exit":
            exit_code = event.exit_code
    return exit_code


class ProgressBar:
    """``label  42%  42.0/100.0 MiB  310 MiB/s`` on stderr, redrawn at most ten times a second;
    only when stderr is a terminal (a script's stderr gets no carriage returns)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()
        self.drawn = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.drawn < 0.1 and done != total):
            return
        self.drawn = now
        mib = done / 2**20
        rate = mib / max(now - self.started, 1e-6)
        share = f"{100 * done // total:3d}%  {mib:.1f}/{total / 2**20:.1f} MiB" if total else f"{mib:.1f} MiB"
        sys.stderr.write(f"\r{self.label}  {share}  {rate:.0f} MiB/s ")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _cp(agent: Agent, args: argparse.Namespace) -> int:
    source, destination = args.source, args.destination
    if source.startswith(VM_PREFIX) == destination.startswith(VM_PREFIX):
        return _fail(args, "USAGE", "cp: exactly one side names the VM (vm:/path)", EXIT_USAGE)
    progress = ProgressBar(f"{source} -> {destination}")
    try:
        if destination.startswith(VM_PREFIX):
            remote = destination.removeprefix(VM_PREFIX)
            if remote.endswith("/"):
                remote += Path(source).name
            entry = agent.upload(Path(source), remote, progress=progress)
            summary: dict[str, Any] = {"path": entry.path, "size": entry.size}
        else:
            remote = source.removeprefix(VM_PREFIX)
            local = Path(destination)
            if local.is_dir():
                local = local / Path(remote).name
            summary = {"path": str(local), "size": agent.download(remote, local, progress=progress)}
    finally:
        progress.finish()
    if args.json:
        _print_json(summary)
    return 0


def _wait_for(agent: Agent, args: argparse.Namespace) -> int:
    region = None
    if args.region:
        x, y, width, height = (int(part) for part in args.region.split(","))
        region = {"x": x, "y": y, "width": width, "height": height}
    result = agent.wait_for(
        args.condition,
        args.text,
        timeout=args.timeout_seconds,
        quiet_ms=args.quiet_ms,
        region=region,
        title=args.title,
        window_class=args.window_class,
        state=args.state,
        role=args.role,
        name=args.name,
        name_contains=args.name_contains,
        app=args.app,
    )
    found = result.window or result.element or result.changed  # typed models (in the caller's space)
    what = found.model_dump(mode="json", by_alias=True, exclude_none=True) if found is not None else None
    human = (
        f"{args.condition}: met after {result.elapsed_ms:.0f} ms" + (f": {json.dumps(what)}" if what else "")
        if result.met
        else f"{args.condition}: not met within {result.elapsed_ms:.0f} ms"
    )
    _done(args, result, human)
    return 0 if result.met else EXIT_NOT_MET


def _action(agent: Agent, args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {}
    for item in args.fields:
        name, sep, value = item.partition("=")
        if not sep:
            return _fail(args, "USAGE", f"action: {item!r} is not name=value", EXIT_USAGE)
        try:
            fields[name] = json.loads(value)
        except json.JSONDecodeError:
            fields[name] = value
    result = agent.action(args.type, **fields)
    if "image" in result and args.output:
        Path(args.output).write_bytes(base64.b64decode(result.pop("image")))
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


# ----- registration ---------------------------------------------------------------------------------


def _run(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from agent.client.sdk import Agent

        try:
            timeout = args.timeout
            if command is _wait_for:  # the condition's time, and a margin for the answer
                timeout = max(timeout, (args.timeout_seconds or WAIT_FOR_DEFAULT_S) + WAIT_FOR_MARGIN_S)
            with Agent(args.url, token_file=args.token_file, timeout=timeout) as agent:
                return command(agent, args)
        except AgentUnreachable as exc:
            return _fail(args, exc.code, f"cannot reach the agent: {exc.message}", EXIT_UNREACHABLE)
        except AgentError as exc:
            if getattr(args, "json", False):
                error = {"code": exc.code, "message": exc.message, "details": exc.details}
                print(json.dumps({"error": error, "request_id": exc.request_id}), file=sys.stderr)
            else:
                print(f"computer-agent: {exc}", file=sys.stderr)
            return EXIT_AGENT_ERROR
        except OSError as exc:  # a local file (cp's, the token file) that cannot be read or written
            where = {"path": exc.filename} if exc.filename else {}
            return _fail(args, "LOCAL_FILE", str(exc), EXIT_USAGE, **where)
        except ValueError as exc:  # a bad --url, --region...
            return _fail(args, "USAGE", str(exc), EXIT_USAGE)

    return run


def register(commands: Any) -> None:
    """Add the client subcommands to ``computer-agent``'s subparsers."""

    def add(name: str, command: Command, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help)
        _client_flags(parser, http_timeout=name != "wait-for")
        parser.set_defaults(func=_run(command))
        return parser

    shot = add("screenshot", _screenshot, "save a screenshot of the VM's screen")
    shot.add_argument("-o", "--output", help="file to write (- for stdout; default: screenshot.<format>)")
    shot.add_argument("--format", choices=("png", "jpeg", "webp"), default=None)
    shot.add_argument("--scale", type=float, default=None, help="downscale factor, 0 < scale <= 1")
    shot.add_argument("--cursor", action="store_true", help="draw the pointer into the image")
    click = add("click", _click, "click at screen pixel X Y")
    click.add_argument("x", type=int)
    click.add_argument("y", type=int)
    click.add_argument("--button", default=None, choices=("left", "right", "middle", "back", "forward"))
    typing = add("type", _type, "type TEXT into the focused window")
    typing.add_argument("text")
    typing.add_argument("--delay-ms", type=int, default=None, help="pause between characters")
    key = add("key", _key, "press a key chord, xdotool syntax (ctrl+c, alt+Tab, Return)")
    key.add_argument("spec")
    add("windows", _windows, "list the top-level windows")
    tree = add("tree", _tree, "print the accessibility tree")
    tree.add_argument("--app", default=None, help="only this application (name or pid)")
    tree.add_argument("--window", default=None, help="only this window (X id)")
    tree.add_argument("--depth", type=int, default=None, help="levels below the root")
    find = add("find", _find, "find accessible elements by role and name")
    find.add_argument("--role", default=None)
    find.add_argument("--name", default=None)
    find.add_argument("--app", default=None)
    run = add("exec", _exec, "run a command on the VM, its output streamed; exits with its status")
    run.add_argument("--cwd", default=None)
    run.add_argument("--timeout-seconds", type=float, default=None)
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    copy = add("cp", _cp, "copy a file to (vm:/path) or from the VM, streamed")
    copy.add_argument("source")
    copy.add_argument("destination")
    _add_wait_for(add)
    action = add("action", _action, "run any action by its type: action TYPE name=value ...")
    action.add_argument("type")
    action.add_argument("fields", nargs="*", help="name=value (values are JSON when they parse)")
    action.add_argument("-o", "--output", default=None, help="write an image answer to this file")


def _add_wait_for(add: Callable[[str, Command, str], argparse.ArgumentParser]) -> None:
    wait = add("wait-for", _wait_for, "wait until a condition holds; exits 4 when it did not in time")
    wait.add_argument("condition", choices=("screen_stable", "screen_changed", "window", "element", "text"))
    wait.add_argument("text", nargs="?", default=None, help="text: what an element's name or text contains")
    wait.add_argument(
        "--timeout",
        "--timeout-seconds",
        dest="timeout_seconds",
        type=float,
        default=None,
        help="seconds the condition may take, at most 30 (default 10); then exit 4",
    )
    wait.add_argument("--quiet-ms", type=int, default=None, help="screen_stable: no change for this long")
    wait.add_argument("--region", default=None, help="screen_*: only changes touching X,Y,W,H")
    wait.add_argument("--title", default=None, help="window: a regex searched in the title")
    wait.add_argument("--class", dest="window_class", default=None, help="window: a regex on WM_CLASS")
    wait.add_argument("--state", default=None, choices=("appears", "disappears", "focused"))
    wait.add_argument("--role", default=None)
    wait.add_argument("--name", default=None)
    wait.add_argument("--name-contains", default=None)
    wait.add_argument("--app", default=None)
