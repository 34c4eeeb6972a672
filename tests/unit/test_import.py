"""Importing the agent touches no X server, D-Bus or network (STYLE.md practice 3)."""

from __future__ import annotations

import json
import subprocess
import sys

from agent.actions.registry import ACTION_MODULES
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


LAZY_PROBE = """
import asyncio, gc, json, sys, threading
on_the_loop = []

def audit(event, args):
    # An operation module imported on the main thread (the event loop's) held the loop meanwhile.
    if event != "import":
        return
    heavy = args[0].startswith(("agent.actions.", "pydantic")) or args[0] == "agent.api.action_routes"
    if heavy and threading.current_thread() is threading.main_thread():
        on_the_loop.append(args[0])

from aiohttp.test_utils import TestClient, TestServer
from agent.actions.manifest import MODULES
from agent.api.app import create_app
from agent.config import Config
from agent.services import Services
from tests.fakes import FakeDesktop

def loaded():
    return sorted(name for name in set(MODULES.values()) if name in sys.modules)

def machinery():
    return [name for name in ("pydantic", "agent.actions.registry", "agent.api.action_routes") if name in sys.modules]

async def main():
    config = Config(token_file=None, display=":fake")
    app = create_app(config, Services(config=config, desktop=FakeDesktop()))
    seen = {"built": loaded() + machinery()}
    sys.addaudithook(audit)
    async with TestClient(TestServer(app)) as client:
        seen["served"] = loaded() + machinery()
        probes = [(await client.get(path)).status for path in ("/health", "/ready", "/metrics")]
        seen["probes"] = [probes, loaded() + machinery()]
        ready = await client.get("/ready", params={"type": "health"})
        seen["wrong type"] = [ready.status, (await ready.json())["error"]["message"]]
        health = await client.get("/health", headers={"X-Coordinate-Space": "wide"})
        seen["bad space"] = [health.status, (await health.json())["error"]["details"]]
        frozen = gc.get_freeze_count()
        click = await client.post("/desktop/click", json={"x": 5, "y": 6})
        seen["click"] = [click.status, loaded()]
        seen["frozen"] = gc.get_freeze_count() - frozen
        move = await client.post("/actions", json={"type": "move", "x": 1, "y": 2})
        seen["actions"] = [move.status, len(loaded())]
        unknown = await client.post("/actions", json={"type": "no_such_action"})
        seen["unknown"] = [unknown.status, len(loaded())]
        seen["on_the_loop"] = sorted(set(on_the_loop))
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_an_operation_module_is_imported_by_the_first_request_that_needs_it() -> None:
    """The routes come from the manifest: serving imports no operation module and not the
    machinery (the registry, pydantic: an idle agent carries no models or handlers), nor do the
    probes, which monitors call all day; a route or an action imports its own module, on a
    worker thread; naming every known action (an unknown type's 400) reads the whole registry."""
    result = subprocess.run(
        [sys.executable, "-c", LAZY_PROBE], capture_output=True, check=False, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["built"] == seen["served"] == []
    assert seen["probes"] == [[200, 200, 200], []]
    assert seen["wrong type"] == [400, "type: this route runs 'ready'; for other types use POST /actions"]
    assert seen["bad space"] == [400, {"field": "X-Coordinate-Space"}]  # checked as on every route
    status, modules = seen["click"]
    assert status == 200 and "agent.actions.input" in modules and "agent.actions.files" not in modules
    assert seen["actions"] == [200, len(modules)]
    assert seen["on_the_loop"] == []  # imported on worker threads
    assert seen["frozen"] > 10_000  # and kept out of the collector's sight, as start-up's objects are
    assert seen["unknown"] == [400, len(ACTION_MODULES)]


DEFERRED_CLIENT_PROBE = """
import importlib.metadata, sys
from agent.api import lazy_client
assert lazy_client.defer()
from aiohttp import hdrs, web
import aiohttp
served = "aiohttp.connector" in sys.modules or "aiohttp.client" in sys.modules
from aiohttp import ClientSession, ClientTimeout
from aiohttp.client import ClientSession as Real
print(served, ClientSession is Real, aiohttp.__version__ == importlib.metadata.version("aiohttp"), hdrs.METH_GET)
"""


def test_the_http_client_loads_on_first_use_not_with_the_server() -> None:
    result = subprocess.run(
        [sys.executable, "-c", DEFERRED_CLIENT_PROBE], capture_output=True, check=False, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "GET"]
