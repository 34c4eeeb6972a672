"""Configuration: one frozen object, read once from flags > environment > TOML file.

Every option is declared once in ``OPTIONS``; the CLI flags, the ``COMPUTER_AGENT_*``
environment variables and the file keys are all derived from that table, and a bad value
fails start-up with a message that names the option and where it came from.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "COMPUTER_AGENT_"


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the option."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {raw!r}")


def _port(raw: str) -> int:
    port = int(raw)
    if not 0 <= port <= 65535:
        raise ValueError(f"{port} is not a TCP port (0-65535)")
    return port


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(f"must be > 0, got {raw}")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be > 0, got {raw}")
    return value


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(raw: str) -> int:
    """Bytes, with an optional K/M/G/T suffix (powers of 1024; a trailing B or iB is accepted)."""
    text = raw.strip().upper().removesuffix("IB").removesuffix("B")
    unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
    number = text[: len(text) - len(unit)].strip()
    if not number.isdigit():
        raise ValueError(f"expected a size such as 512M or 2G, got {raw!r}")
    return int(number) * _SIZE_UNITS[unit]


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _path_list(raw: str) -> tuple[Path, ...]:
    return tuple(Path(part.strip()).expanduser() for part in raw.split(",") if part.strip())


def _host_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip().lower().rstrip(".") for part in raw.split(",") if part.strip())


def _optional_str(raw: str) -> str | None:
    return raw or None


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # attribute name; flag is --name-with-dashes, env COMPUTER_AGENT_NAME
    parse: Callable[[str], Any]
    default: Any
    help: str


OPTIONS: tuple[Option, ...] = (
    Option("host", str, "127.0.0.1", "address to listen on"),
    Option("port", _port, 8000, "TCP port to listen on (0 picks a free one)"),
    Option("display", str, os.environ.get("DISPLAY", ":0"), "X display to drive"),
    Option("token_file", _path, None, "file (mode 0600) holding the bearer token"),
    Option("insecure_no_auth", _bool, False, "serve without a token (only allowed when bound to loopback)"),
    Option(
        "allowed_hosts",
        _host_list,
        (),
        "comma-separated extra host names accepted in Host and Origin (.example.com: its subdomains too;"
        " * turns the check off); loopback, IP literals, the listen address and advertise_url's host"
        " are always accepted",
    ),
    Option(
        "max_body_bytes",
        _positive_int,
        16 * 1024 * 1024,
        "largest JSON request body accepted (routes that carry no bulk data have smaller limits)",
    ),
    Option("http_header_timeout", _positive_float, 10.0, "seconds a client has to send a request's headers"),
    Option("http_body_timeout", _positive_float, 30.0, "seconds a request body may stall (no byte arriving)"),
    Option(
        "http_keepalive_timeout", _positive_float, 30.0, "seconds an idle keep-alive connection stays open"
    ),
    Option(
        "http_max_connections",
        _positive_int,
        512,
        "open client connections; past it the longest-idle one is closed, or a new one refused with 503",
    ),
    Option("log_level", str, "info", "debug, info, warning or error"),
    Option("accessibility", _bool, True, "serve the AT-SPI accessibility routes and check the bus"),
    Option(
        "accessibility_required",
        _bool,
        False,
        "/ready answers 503 while the accessibility bus is unreachable (otherwise it is only reported)",
    ),
    Option(
        "exec",
        _bool,
        True,
        "run commands and apps: /exec, /bash, /processes, /files, /desktop/launch (false: 403 PERMISSION_DENIED)",
    ),
    Option("desktop_user", _optional_str, None, "user that commands and apps run as (when root)"),
    Option("exec_max_processes", _positive_int, 64, "concurrently running commands before 429"),
    Option("exec_max_timeout", _positive_float, 3600.0, "largest timeout_seconds a command may ask for"),
    Option(
        "exec_max_tasks",
        _positive_int,
        4096,
        "processes and threads one command (its cgroup: everything it starts) may have at once",
    ),
    Option(
        "exec_memory_max",
        _size,
        0,
        "memory one command's cgroup may use, e.g. 4G (0: 3/4 of the machine's memory); "
        "also the cap for all commands together",
    ),
    Option("files_max_bytes", _positive_int, 4 * 1024 * 1024 * 1024, "largest file upload accepted"),
    Option(
        "files_allowed_roots", _path_list, (), "comma-separated folders the files API may touch (empty: any)"
    ),
    Option("processes_keep_seconds", _positive_float, 600.0, "seconds finished background processes stay"),
    Option("processes_keep_count", _positive_int, 100, "finished background processes kept listed"),
    Option(
        "processes_output_max_bytes",
        _size,
        256 * 1024 * 1024,
        "output all background processes together keep; past it the oldest finished processes' goes first",
    ),
    Option(
        "processes_stdin_max_bytes",
        _size,
        4 * 1024 * 1024,
        "stdin bytes a background process has not read yet that the agent holds for it",
    ),
    Option("control_plane_url", _optional_str, None, "URL the heartbeat POSTs to"),
    Option("computer_id", _optional_str, None, "this computer's id in heartbeats"),
    Option("control_plane_token_file", _path, None, "file with the bearer token for heartbeats"),
    Option("control_plane_ca_file", _path, None, "CA bundle to verify the control plane's TLS"),
    Option("heartbeat_interval", _positive_float, 10.0, "seconds between heartbeats"),
    Option("advertise_url", _optional_str, None, "URL the control plane should reach this agent at"),
    Option("launch_log_dir", _path, None, "directory of launched apps' logs (default ~/.local/state/...)"),
    Option("wallpaper_max_bytes", _positive_int, 32 * 1024 * 1024, "largest wallpaper image accepted"),
    Option("wallpaper_timeout", _positive_float, 20.0, "seconds to fetch a wallpaper image"),
    Option(
        "wallpaper_fetch_urls",
        _bool,
        False,
        "fetch http(s) wallpaper URLs (never from loopback, link-local or unspecified addresses); off: 403",
    ),
)


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    display: str = ":0"
    token_file: Path | None = None
    insecure_no_auth: bool = False
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 16 * 1024 * 1024
    http_header_timeout: float = 10.0
    http_body_timeout: float = 30.0
    http_keepalive_timeout: float = 30.0
    http_max_connections: int = 512
    log_level: str = "info"
    accessibility: bool = True
    accessibility_required: bool = False
    exec: bool = True
    desktop_user: str | None = None
    exec_max_processes: int = 64
    exec_max_timeout: float = 3600.0
    exec_max_tasks: int = 4096
    exec_memory_max: int = 0
    files_max_bytes: int = 4 * 1024 * 1024 * 1024
    files_allowed_roots: tuple[Path, ...] = ()
    processes_keep_seconds: float = 600.0
    processes_keep_count: int = 100
    processes_output_max_bytes: int = 256 * 1024 * 1024
    processes_stdin_max_bytes: int = 4 * 1024 * 1024
    control_plane_url: str | None = None
    computer_id: str | None = None
    control_plane_token_file: Path | None = None
    control_plane_ca_file: Path | None = None
    heartbeat_interval: float = 10.0
    advertise_url: str | None = None
    launch_log_dir: Path | None = None
    wallpaper_max_bytes: int = 32 * 1024 * 1024
    wallpaper_timeout: float = 20.0
    wallpaper_fetch_urls: bool = False

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_files(config_file: Path | None, config_dir: Path | None = None) -> dict[str, tuple[Any, str]]:
    """Option values from the TOML files, each with where it came from.

    ``config_file`` (the shipped defaults) is read first, then ``config_dir/*.toml`` in name
    order (the admin's drop-ins, which dpkg never owns, so upgrades never ask about them); a
    later file wins key by key. A missing drop-in directory is an empty one.
    """
    files: list[Path] = [] if config_file is None else [config_file]
    if config_dir is not None and config_dir.is_dir():
        files += sorted(path for path in config_dir.glob("*.toml") if path.is_file())
    known = {option.name for option in OPTIONS}
    values: dict[str, tuple[Any, str]] = {}
    for path in files:
        try:
            parsed = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: not valid TOML: {exc}") from exc
        unknown = sorted(set(parsed) - known)
        if unknown:
            raise ConfigError(f"config file {path}: unknown option(s) {', '.join(unknown)}")
        values.update((name, (value, f"{name} in {path}")) for name, value in parsed.items())
    return values


def load(
    flags: Mapping[str, str | None],
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
    config_dir: Path | None = None,
) -> Config:
    """Merge flags > env > drop-in files > config file over the defaults, parse each value, check.

    ``flags`` maps option names to the raw string given on the command line (None: not given).
    """
    environ = os.environ if environ is None else environ
    file_values = read_files(config_file, config_dir)

    values: dict[str, Any] = {}
    for option in OPTIONS:
        env_name = ENV_PREFIX + option.name.upper()
        flag_name = "--" + option.name.replace("_", "-")
        if flags.get(option.name) is not None:
            raw, origin = flags[option.name], flag_name
        elif env_name in environ:
            raw, origin = environ[env_name], env_name
        elif option.name in file_values:
            raw, origin = file_values[option.name]
            if isinstance(raw, bool):
                raw = "true" if raw else "false"
            raw = str(raw)
        else:
            values[option.name] = option.default
            continue
        try:
            values[option.name] = option.parse(str(raw))
        except ValueError as exc:
            raise ConfigError(f"{origin}: {exc}") from exc
    config = Config(**values)
    check(config)
    return config


def check(config: Config) -> None:
    """Refuse combinations that are unsafe or cannot work."""
    if config.token_file is None and not config.insecure_no_auth:
        raise ConfigError(
            "--token-file is required (or --insecure-no-auth on a loopback address for local development)"
        )
    if config.insecure_no_auth and not is_loopback(config.host):
        raise ConfigError(f"--insecure-no-auth is refused when listening on {config.host}: bind to 127.0.0.1")
    if config.log_level.lower() not in {"debug", "info", "warning", "error"}:
        raise ConfigError(f"--log-level: expected debug, info, warning or error, got {config.log_level!r}")
    if config.control_plane_url is not None and not config.control_plane_url.startswith(
        ("http://", "https://")
    ):
        raise ConfigError(f"--control-plane-url: expected an http(s) URL, got {config.control_plane_url!r}")


def read_token(path: Path) -> str:
    """Read the bearer token; refuse files other users can read, and empty tokens."""
    try:
        mode = path.stat().st_mode
        token = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"--token-file {path}: cannot read: {exc.strerror}") from exc
    if mode & 0o077:
        raise ConfigError(f"--token-file {path}: mode {mode & 0o777:04o} lets others read it; chmod 600")
    if not token:
        raise ConfigError(f"--token-file {path}: the file is empty")
    return token
