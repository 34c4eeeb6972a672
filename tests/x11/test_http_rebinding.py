"""Finding 1 of issue 11 on a real desktop: a DNS-rebinding page cannot read the screen.

A page at http://evil.example:PORT whose name re-resolves to 127.0.0.1 makes the browser send
``Host: evil.example:PORT`` and read the answer as same-origin. With --insecure-no-auth that read
screenshots; now every route refuses a Host the agent does not answer for.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, start_agent
from tests.raw_http import exchange, port_of, request

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def open_agent(desktop: DevDesktop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(
        dict(desktop.env), tmp_path_factory.mktemp("rebinding"), "--display", desktop.display, auth=False
    )
    yield running
    running.stop()


def test_a_rebound_host_cannot_read_the_screen(open_agent: RunningAgent) -> None:
    port = port_of(open_agent)
    own = exchange(open_agent, request(open_agent, "GET", "/desktop/screenshot"))
    assert own.status == 200 and own.body.startswith(PNG_MAGIC)  # the route works for the agent's own name
    for host in (f"evil.example:{port}", f"EVIL.example.:{port}", "rebind.attacker.test"):
        answer = exchange(open_agent, request(open_agent, "GET", "/desktop/screenshot", host=host))
        assert answer.status == 403, (host, answer.body[:200])
        assert not answer.body.startswith(PNG_MAGIC)
        error = answer.envelope()
        assert error["code"] == "HOST_NOT_ALLOWED" and "Host" in str(error["message"])
        assert error["details"]["header"] == "Host"  # type: ignore[index]
