"""Unit-tier fixtures: the real aiohttp app around a fake desktop, served on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.api.app import create_app
from agent.config import Config
from agent.services import Services
from tests.fakes import FakeDesktop

TOKEN = "unit-test-token"
Api = TestClient[web.Request, web.Application]  # the client of the app under test


@pytest.fixture()
def fake_desktop() -> FakeDesktop:
    return FakeDesktop()


@pytest.fixture()
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture()
async def api(fake_desktop: FakeDesktop, token_file: Path) -> AsyncIterator[Api]:
    config = Config(token_file=token_file, display=":fake", max_body_bytes=1024 * 1024)
    services = Services(config=config, desktop=fake_desktop)
    app = create_app(config, services)
    async with TestClient(TestServer(app)) as client:
        client.session.headers["Authorization"] = f"Bearer {TOKEN}"
        client.session.headers["Content-Type"] = "application/json"  # what every POST route takes
        yield client
