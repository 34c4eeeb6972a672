"""Configuration: one frozen object, read once from flags > environment > TOML file.

Every option is declared once, as a field of ``Config`` carrying its parser and help; the CLI
flags, the ``COMPUTER_AGENT_*`` environment variables and the file keys (``OPTIONS``) are all
derived from those fields, and a bad value fails start-up with a message that names the option
and where it came from.
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


def option(default: Any, parse: Callable[[str], Any], help: str, *, name: str | None = None) -> Any:
    """A ``Config`` field that is also an option: how to parse it, what ``--help`` says of it.

    ``name`` (default: the field's) is the TOML key; the flag and the environment variable are
    derived from it (``--name-with-dashes``, ``COMPUTER_AGENT_NAME``).
    """
    return dataclasses.field(default=default, metadata={"parse": parse, "help": help, "name": name})


@dataclass(frozen=True, slots=True)
class Config:
    """The agent's settings; each field is declared once, with its default, parser and help."""

    host: str = option("127.0.0.1", str, "address to listen on")
    port: int = option(8000, _port, "TCP port to listen on (0 picks a free one)")
    display: str = option(os.environ.get("DISPLAY", ":0"), str, "X display to drive")
    token_file: Path | None = option(None, _path, "file (mode 0600) holding the bearer token")
    insecure_no_auth: bool = option(
        False, _bool, "serve without a token (only allowed when bound to loopback)"
    )
    allowed_hosts: tuple[str, ...] = option(
        (),
        _host_list,
        "comma-separated extra host names accepted in Host and Origin (.example.com: its subdomains too;"
        " * turns the check off); loopback, IP literals, the listen address and advertise_url's host"
        " are always accepted",
    )
    max_body_bytes: int = option(
        16 * 1024 * 1024,
        _positive_int,
        "largest JSON request body accepted (routes that carry no bulk data have smaller limits)",
    )
    http_header_timeout: float = option(
        10.0, _positive_float, "seconds a client has to send a request's headers"
    )
    http_body_timeout: float = option(
        30.0, _positive_float, "seconds a request body may stall (no byte arriving)"
    )
    http_keepalive_timeout: float = option(
        30.0, _positive_float, "seconds an idle keep-alive connection stays open"
    )
    http_max_connections: int = option(
        512,
        _positive_int,
        "open client connections; past it the longest-idle one is closed, or a new one refused with 503",
    )
    log_level: str = option("info", str, "debug, info, warning or error")
    accessibility: bool = option(True, _bool, "serve the AT-SPI accessibility routes and check the bus")
    accessibility_required: bool = option(
        False,
        _bool,
        "/ready answers 503 while the accessibility bus is unreachable (otherwise it is only reported)",
    )
    # --exec, COMPUTER_AGENT_EXEC, exec = ... in a file (the field's own name would read like Services.exec).
    exec_enabled: bool = option(
        True,
        _bool,
        "run commands and apps: /exec, /bash, /processes, /files, /desktop/launch (false: 403 EXEC_DISABLED / FILES_DISABLED)",
        name="exec",
    )
    desktop_user: str | None = option(None, _optional_str, "user that commands and apps run as (when root)")
    exec_max_processes: int = option(64, _positive_int, "concurrently running commands before 429")
    exec_max_timeout: float = option(3600.0, _positive_float, "largest timeout_seconds a command may ask for")
    exec_max_tasks: int = option(
        4096,
        _positive_int,
        "processes and threads one command (its cgroup: everything it starts) may have at once",
    )
    exec_memory_max: int = option(
        0,
        _size,
        "memory one command's cgroup may use, e.g. 4G (0: 3/4 of the machine's memory); also the cap for all commands together",
    )
    files_max_bytes: int = option(4 * 1024 * 1024 * 1024, _positive_int, "largest file upload accepted")
    files_allowed_roots: tuple[Path, ...] = option(
        (), _path_list, "comma-separated folders the files API may touch (empty: any)"
    )
    processes_keep_seconds: float = option(
        600.0, _positive_float, "seconds finished background processes stay"
    )
    processes_keep_count: int = option(100, _positive_int, "finished background processes kept listed")
    processes_output_max_bytes: int = option(
        256 * 1024 * 1024,
        _size,
        "output all background processes together keep; past it the oldest finished processes' goes first",
    )
    processes_stdin_max_bytes: int = option(
        4 * 1024 * 1024,
        _size,
        "stdin bytes a background process has not read yet that the agent holds for it",
    )
    control_plane_url: str | None = option(None, _optional_str, "URL the heartbeat POSTs to")
    computer_id: str | None = option(None, _optional_str, "this computer's id in heartbeats")
    control_plane_token_file: Path | None = option(None, _path, "file with the bearer token for heartbeats")
    control_plane_ca_file: Path | None = option(None, _path, "CA bundle to verify the control plane's TLS")
    heartbeat_interval: float = option(10.0, _positive_float, "seconds between heartbeats")
    advertise_url: str | None = option(
        None, _optional_str, "URL the control plane should reach this agent at"
    )
    launch_log_dir: Path | None = option(
        None, _path, "directory of launched apps' logs (default ~/.local/state/...)"
    )
    browser: bool = option(
        True,
        _bool,
        "serve the /browser routes: a Chromium on the desktop driven over CDP (false: 403 BROWSER_DISABLED)",
    )
    browser_allow_unsafe_urls: bool = option(
        False,
        _bool,
        "let the browser open javascript:, file: and chrome: URLs (off: 403 URL_SCHEME_NOT_ALLOWED)",
    )
    wallpaper_max_bytes: int = option(32 * 1024 * 1024, _positive_int, "largest wallpaper image accepted")
    wallpaper_timeout: float = option(20.0, _positive_float, "seconds to fetch a wallpaper image")
    wallpaper_fetch_urls: bool = option(
        False,
        _bool,
        "fetch http(s) wallpaper URLs (never from loopback, link-local or unspecified addresses); off: 403",
    )

    capture_idle_seconds: float = option(
        30.0,
        _positive_float,
        "seconds without a fresh screenshot until the capture's shared memory and encoder buffers are released",
    )
    events_ring_size: int = option(
        1024,
        _positive_int,
        "desktop events kept for readers that resume (Last-Event-ID); older ones: a gap event",
    )
    ws_send_buffer_bytes: int = option(
        32 * 1024 * 1024,
        _size,
        "bytes of answers and events a /ws connection may have waiting for its reader; past it the reader is too slow: closed",
    )
    ws_heartbeat: float = option(
        20.0,
        _positive_float,
        "seconds between /ws pings; a connection that misses a pong for as long is closed",
    )

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Option:
    """One ``Config`` field as the command line, the environment and the files see it."""

    name: str  # TOML key; the flag is --name-with-dashes, the variable COMPUTER_AGENT_NAME
    attribute: str  # the Config field it fills
    parse: Callable[[str], Any]
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def is_switch(self) -> bool:
        """A boolean: ``--flag`` alone means true."""
        return self.parse is _bool


OPTIONS: tuple[Option, ...] = tuple(
    Option(
        name=field.metadata["name"] or field.name,
        attribute=field.name,
        parse=field.metadata["parse"],
        default=field.default,
        help=field.metadata["help"],
    )
    for field in dataclasses.fields(Config)
)


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
        if flags.get(option.name) is not None:
            raw, origin = flags[option.name], option.flag
        elif option.env in environ:
            raw, origin = environ[option.env], option.env
        elif option.name in file_values:
            raw, origin = file_values[option.name]
            if isinstance(raw, bool):
                raw = "true" if raw else "false"
            raw = str(raw)
        else:
            continue  # the field's default
        try:
            values[option.attribute] = option.parse(str(raw))
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
