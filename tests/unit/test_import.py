"""Importing the agent touches no X server, D-Bus or network (STYLE.md practice 3)."""

from __future__ import annotations

import subprocess
import sys

from tests.displays import unused_display

PROBE = """
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args)[:200])  # recorded: the agent might catch the error raised below
    raise OSError("a socket was opened at import time")
socket.socket.connect = refuse
socket.create_connection = refuse
import Xlib.display
displays = []
Xlib.display.Display.__init__ = lambda self, *args, **kwargs: displays.append(args) or refuse(*args)
import agent, agent.cli, agent.api.app, agent.actions.registry, agent.x11.backend, agent.config
from agent.actions.registry import load_all
load_all()
from agent.api.openapi import build_document
build_document()
assert displays == [], f"an X display was opened at import time: {displays}"
assert attempts == [], f"a connection was attempted at import time: {attempts}"
print("ok")
"""


def test_import_opens_no_connection() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={"DISPLAY": unused_display(), "PATH": "/usr/bin"},
        capture_output=True,
        check=False,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
