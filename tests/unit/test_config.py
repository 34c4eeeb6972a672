"""Configuration: flags > env > file, loud errors naming the option, unsafe set-ups refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agent.config import ConfigError, load, read_token
from tests.conftest import AGENT_BIN, start_agent
from tests.displays import unused_display
from tests.unit.test_exec import agent_env


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    config_file = tmp_path / "agent.toml"
    display = unused_display()
    config_file.write_text(
        f'port = 7000\nhost = "127.0.0.2"\ndisplay = "{display}"\ninsecure_no_auth = true\n'
    )
    config = load({"port": "9000"}, {"COMPUTER_AGENT_HOST": "127.0.0.3"}, config_file)
    assert (config.port, config.host, config.display, config.insecure_no_auth) == (
        9000,
        "127.0.0.3",
        display,
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


@pytest.mark.parametrize("where", ["under-a-file", "read-only"])
def test_unwritable_launch_log_dir_fails_start_naming_the_option(tmp_path: Path, where: str) -> None:
    """Checked once at start (issue 11, finding 9) instead of every launch answering 500."""
    (tmp_path / "file").write_text("not a folder")
    log_dir = tmp_path / "file" / "logs" if where == "under-a-file" else Path("/proc/computer-agent-logs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTER_AGENT_")}
    started = subprocess.run(
        [
            str(AGENT_BIN),
            "serve",
            "--insecure-no-auth",
            "--port",
            "0",
            "--display",
            unused_display(),
            "--launch-log-dir",
            str(log_dir),
        ],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,  # the old agent started and served: the timeout fails the test
    )
    assert started.returncode == 2, started.stderr[-2000:]
    assert f"--launch-log-dir {log_dir}: cannot write there" in started.stderr


def test_launch_log_dir_lost_after_start_is_a_clear_503(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    agent = start_agent(
        agent_env(), tmp_path, "--display", unused_display(), "--launch-log-dir", str(log_dir)
    )
    try:
        log_dir.rmdir()
        log_dir.write_text("now a file")  # the folder cannot be made again
        with agent.client() as http:
            answer = http.post("/desktop/launch", json={"app": "true"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "UNAVAILABLE"
        assert "--launch-log-dir" in answer.json()["error"]["message"]
    finally:
        agent.stop()


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


@pytest.mark.parametrize("where", ["flag", "env", "file"])
def test_exec_switch_keeps_its_names_while_the_field_reads_exec_enabled(tmp_path: Path, where: str) -> None:
    """--exec, COMPUTER_AGENT_EXEC and ``exec =`` fill Config.exec_enabled (issue 12: the field
    was ``exec``, like Services.exec); the field's own name is no option."""
    config_file = tmp_path / "agent.toml"
    config_file.write_text("insecure_no_auth = true\n" + ("exec = false\n" if where == "file" else ""))
    flags = {"exec": "false"} if where == "flag" else {}
    env = {"COMPUTER_AGENT_EXEC": "no"} if where == "env" else {}
    assert load(flags, env, config_file).exec_enabled is False
    assert load({"insecure_no_auth": "true"}, {}).exec_enabled is True  # the default
    config_file.write_text("insecure_no_auth = true\nexec_enabled = false\n")
    with pytest.raises(ConfigError, match="unknown option"):
        load({}, {}, config_file)
