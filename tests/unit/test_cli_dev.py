"""``dev`` parses the options ``serve`` has, and its own display and token only fill in what is unset."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from agent.cli import _config_from, build_parser
from agent.config import ENV_PREFIX, OPTIONS


def _flags(command: str) -> set[str]:
    parser = build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return {flag for action in commands.choices[command]._actions for flag in action.option_strings}


def test_dev_has_every_flag_serve_has() -> None:
    assert _flags("serve") <= _flags("dev")
    assert {option.flag for option in OPTIONS} <= _flags("dev")


FALLBACKS = {"token_file": "/dev-default/token", "log_level": "debug"}
MINE = {"token_file": "/mine/token", "log_level": "warning"}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_a_fallback_never_beats_a_flag_the_environment_or_a_file(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    parser = build_parser()
    flag = "--" + name.replace("_", "-")

    def value(argv: list[str]) -> str:
        return str(getattr(_config_from(parser.parse_args(["dev", *argv]), FALLBACKS), name))

    assert value([]) == FALLBACKS[name]
    assert value([flag, MINE[name]]) == MINE[name]
    monkeypatch.setenv(ENV_PREFIX + name.upper(), MINE[name])
    assert value([]) == MINE[name]
    monkeypatch.delenv(ENV_PREFIX + name.upper())
    config_file = tmp_path / "agent.toml"
    config_file.write_text(f'{name} = "{MINE[name]}"\n')
    assert value(["--config", str(config_file)]) == MINE[name]
