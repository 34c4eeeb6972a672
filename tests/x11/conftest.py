"""Fixtures the x11 tier shares."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.observers import EventLogger


@pytest.fixture()
def logger(desktop: DevDesktop, client: httpx.Client) -> Iterator[EventLogger]:
    app = EventLogger(desktop)
    app.drain()
    yield app
    app.close()
