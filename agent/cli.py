"""``computer-agent``: serve, dev (a private desktop plus the agent), openapi, and the client
commands (agent.client.cli: screenshot, click, type, key, windows, tree, find, exec, cp, mcp...)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import re
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from agent import __version__
from agent.config import OPTIONS, Config, ConfigError, load, read_files

LOG = logging.getLogger("agent.cli")
SHUTDOWN_GRACE = 5.0  # seconds in-flight requests get to finish on SIGTERM before being cancelled


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML file with options (flags and env win)"
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="directory of *.toml drop-ins read after --config, in name order (a later file wins)",
    )
    for option in OPTIONS:
        if option.is_switch:
            parser.add_argument(
                option.flag, dest=option.name, nargs="?", const="true", default=None, help=option.help
            )
        else:
            parser.add_argument(
                option.flag, dest=option.name, default=None, help=f"{option.help} (default: {option.default})"
            )


def _config_files(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    config_file = args.config
    if config_file is None and os.environ.get("COMPUTER_AGENT_CONFIG"):
        config_file = Path(os.environ["COMPUTER_AGENT_CONFIG"])
    config_dir = args.config_dir
    if config_dir is None and os.environ.get("COMPUTER_AGENT_CONFIG_DIR"):
        config_dir = Path(os.environ["COMPUTER_AGENT_CONFIG_DIR"])
    return config_file, config_dir


def _options_given(args: argparse.Namespace) -> set[str]:
    """The options set by a flag, the environment or a config file (not left to the default)."""
    from_files = read_files(*_config_files(args))
    return {
        option.name
        for option in OPTIONS
        if getattr(args, option.name) is not None or option.env in os.environ or option.name in from_files
    }


def _config_from(args: argparse.Namespace, fallbacks: dict[str, str] | None = None) -> Config:
    """The configuration from flags > env > files > defaults; ``fallbacks`` replace the defaults
    of the options the caller set nowhere (how ``dev`` supplies its own display and token)."""
    flags = {option.name: getattr(args, option.name) for option in OPTIONS}
    if fallbacks:
        given = _options_given(args)
        flags.update((name, value) for name, value in fallbacks.items() if name not in given)
    config_file, config_dir = _config_files(args)
    return load(flags, config_file=config_file, config_dir=config_dir)


async def serve(
    config: Config, *, announce: bool = True, on_listening: Callable[[str], None] | None = None
) -> None:
    """Run the HTTP server until SIGTERM or SIGINT, then stop gracefully; ``on_listening`` gets
    the URL once the socket listens (with --port 0, the port the system chose)."""
    from aiohttp import web

    from agent.api.app import create_app
    from agent.api.appkeys import SERVICES_KEY
    from agent.api.listener import listening_sockets
    from agent.api.server import EdgeRunner, Limits
    from agent.api.throttle import throttle_logs
    from agent.supervision.sdnotify import Notifier

    throttle_logs()
    # Signals are ours before anyone can learn we listen: a SIGTERM sent the moment "listening" is
    # logged must stop us gracefully (dev's desktop is torn down in its finally), not by default.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(config)
    runner = EdgeRunner(
        app, limits=Limits.from_config(config), access_log=None, handle_signals=False, shutdown_timeout=5.0
    )
    await runner.setup()
    for sock in listening_sockets(config.host, config.port):
        await web.SockSite(runner, sock).start()
    port = runner.addresses[0][1] if runner.addresses else config.port
    url = f"http://{config.host}:{port}"
    # What starting made (modules, models, routes) lives as long as we do: out of the collector's
    # sight, a full collection no longer walks it (a 72 ms pause every ~20 tree requests -> 12 ms).
    gc.freeze()
    if on_listening is not None:
        on_listening(url)
    if announce:
        LOG.info(
            "listening on %s",
            url,
            extra={"fields": {"event": "listening", "url": url, "display": config.display}},
        )
    # systemd (Type=notify): READY=1 once we listen and the display answers, STATUS= on each
    # readiness change, WATCHDOG=1 from this loop, STOPPING=1 on the way out.
    readiness = app[SERVICES_KEY].readiness
    notifier = Notifier.from_environment()
    notifier.start_watchdog()
    announcing = loop.create_task(notifier.announce(readiness), name="sd-announce")
    try:
        await stop.wait()
    finally:
        LOG.info("stopping")
        notifier.stopping()
        readiness.begin_shutdown()  # /ready answers 503 while in-flight requests finish
        announcing.cancel()
        # Stop accepting, give in-flight requests SHUTDOWN_GRACE seconds, then cancel them (aiohttp
        # alone would wait twice its shutdown_timeout and never cancel a handler itself); then the
        # services close: last heartbeat, held keys and buttons released.
        for running_site in list(runner.sites):
            await running_site.stop()
        await app[SERVICES_KEY].metrics.finish_in_flight(SHUTDOWN_GRACE)
        await runner.cleanup()
        await notifier.close()


def _cmd_serve(args: argparse.Namespace) -> int:
    config = _config_from(args)
    from agent.supervision.logs import configure

    configure(config.log_level)
    asyncio.run(serve(config))
    return 0


def _cmd_dev(args: argparse.Namespace) -> int:
    """A private Xvfb desktop with a window manager and session bus, and the agent on loopback.

    Every option ``serve`` has means the same here; ``dev`` only supplies what is left unset:
    the display (a free one it starts Xvfb on) and the token (a file under the state dir).
    ``--display :N`` starts the private desktop on :N; ``--token-file F`` uses F's token (a new
    one is written there if F does not exist); ``--insecure-no-auth`` serves without a token.
    """
    from agent.session.devdesktop import DevDesktop
    from agent.supervision.logs import configure

    state = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local/state")) / "computer-agent"
    given = _options_given(args)
    fallbacks = {}
    if "token_file" not in given and "insecure_no_auth" not in given:
        fallbacks["token_file"] = str(state / "dev-token")
    config = _config_from(args, fallbacks)
    display = _dev_display(config.display) if "display" in given else ""
    if config.token_file is not None:
        _ensure_token(config.token_file)
    width, _, height = args.size.partition("x")
    # A SIGTERM while the desktop starts must still reach the finally that stops it, and one while
    # it stops must not cut that short (its X server, bus and WM would outlive us).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    desktop = DevDesktop(width=int(width), height=int(height), display=display)
    try:
        desktop.start()
        os.environ.update(desktop.env)
        config = config.replace(display=desktop.display)
        configure(config.log_level)
        token = config.token_file
        auth = f'-H "Authorization: Bearer $(cat {token})" ' if token is not None else ""

        def banner(url: str) -> None:  # once listening: the real port, also with --port 0
            print(
                f"\ncomputer-agent {__version__} dev desktop on DISPLAY={desktop.display}\n"
                f"  API:   {url}  (docs: /openapi.json)\n"
                f"  token: {token if token is not None else 'none (--insecure-no-auth)'}\n"
                f"  try:   curl {auth}{url}/desktop/screenshot -o shot.png\n",
                file=sys.stderr,
                flush=True,
            )

        asyncio.run(serve(config, on_listening=banner))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        desktop.stop()
    return 0


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _dev_display(display: str) -> str:
    """``dev`` starts its own X server, so the display it is given must be a local one."""
    if re.fullmatch(r":\d+(\.\d+)?", display) is None:
        raise ConfigError(
            f"--display: dev starts its own X server, so it takes a local display such as :5, got {display!r}"
        )
    return display


def _ensure_token(path: Path) -> None:
    """Write a fresh token (mode 0600) where none exists yet; an existing file is used as it is."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")


def _cmd_openapi(args: argparse.Namespace) -> int:
    from agent.api.openapi import build_document

    json.dump(build_document(), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="computer-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"computer-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve the API for an X display")
    _add_config_flags(serve_parser)
    serve_parser.set_defaults(func=_cmd_serve)
    dev_parser = commands.add_parser("dev", help="start a private Xvfb desktop and serve it on loopback")
    _add_config_flags(dev_parser)
    dev_parser.add_argument("--size", default="1280x720", help="screen size WxH")
    dev_parser.set_defaults(func=_cmd_dev)
    openapi_parser = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi_parser.set_defaults(func=_cmd_openapi)
    from agent.client.cli import add_global_flags
    from agent.client.cli import register as register_client_commands

    add_global_flags(parser)  # computer-agent --url U --json click 1 1
    register_client_commands(commands)  # screenshot, click, type, key, windows, tree, find, exec, cp, ...
    from agent.mcp.stdio import register as register_mcp

    register_mcp(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from agent.api import lazy_client

    lazy_client.defer()  # aiohttp's HTTP client loads on first use, not with the server
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"computer-agent: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
