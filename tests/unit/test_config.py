"""Configuration: flags > env > file, loud errors naming the option, unsafe set-ups refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import OPTIONS, Config, ConfigError, load, read_token

pytestmark = pytest.mark.unit


def test_defaults_of_the_table_and_the_dataclass_agree() -> None:
    defaults = Config()
    for option in OPTIONS:
        if option.name == "display":
            continue  # the table takes $DISPLAY
        assert getattr(defaults, option.name) == option.default, option.name


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    config_file = tmp_path / "agent.toml"
    config_file.write_text('port = 7000\nhost = "127.0.0.2"\ndisplay = ":5"\ninsecure_no_auth = true\n')
    config = load({"port": "9000"}, {"COMPUTER_AGENT_HOST": "127.0.0.3"}, config_file)
    assert (config.port, config.host, config.display, config.insecure_no_auth) == (
        9000,
        "127.0.0.3",
        ":5",
        True,
    )


@pytest.mark.parametrize(
    ("flags", "env", "fragment"),
    [
        ({"port": "http"}, {}, "--port"),
        ({"port": "70000"}, {}, "--port"),
        ({}, {"COMPUTER_AGENT_HEARTBEAT_INTERVAL": "-1"}, "COMPUTER_AGENT_HEARTBEAT_INTERVAL"),
        ({"insecure_no_auth": "maybe"}, {}, "--insecure-no-auth"),
        ({}, {}, "--token-file is required"),
        ({"insecure_no_auth": "true", "host": "0.0.0.0"}, {}, "refused"),
        ({"insecure_no_auth": "true", "log_level": "loud"}, {}, "--log-level"),
    ],
)
def test_bad_values_fail_naming_the_option(flags: dict[str, str], env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("-", "\\-")):
        load(flags, env)


def test_unknown_file_keys_are_refused(tmp_path: Path) -> None:
    config_file = tmp_path / "agent.toml"
    config_file.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown option"):
        load({}, {}, config_file)


def test_token_file_must_be_private_and_non_empty(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")
    token.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_token(token)
    token.chmod(0o600)
    assert read_token(token) == "secret"
    token.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        read_token(token)


def test_drop_ins_override_the_shipped_file_in_name_order(tmp_path: Path) -> None:
    """The package's defaults file, then the admin's agent.d/*.toml: a later file wins per key."""
    shipped = tmp_path / "agent.toml"
    shipped.write_text('host = "0.0.0.0"\nport = 7000\nlog_level = "info"\ninsecure_no_auth = false\n')
    drop_ins = tmp_path / "agent.d"
    drop_ins.mkdir()
    (drop_ins / "50-site.toml").write_text('port = 7001\ntoken_file = "/etc/t"\n')
    (drop_ins / "90-debug.toml").write_text('log_level = "debug"\nport = 7002\n')
    (drop_ins / "README").write_text("not toml, not read\n")
    config = load({}, {}, shipped, drop_ins)
    assert (config.host, config.port, config.log_level, str(config.token_file)) == (
        "0.0.0.0",
        7002,
        "debug",
        "/etc/t",
    )
    (drop_ins / "60-bad.toml").write_text("prot = 1\n")
    with pytest.raises(ConfigError, match=r"60-bad\.toml: unknown option"):
        load({}, {}, shipped, drop_ins)


def test_a_missing_drop_in_directory_is_empty(tmp_path: Path) -> None:
    shipped = tmp_path / "agent.toml"
    shipped.write_text('port = 7000\ntoken_file = "/etc/t"\n')
    assert load({}, {}, shipped, tmp_path / "agent.d").port == 7000
