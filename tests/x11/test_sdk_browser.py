"""The SDK's browser calls against a real agent and Debian's Chromium: tabs switched and closed
by id, the per-request fields (tab_id, include_context) sent, and BROWSER_CLOSED reported, not
retried into a fresh browser. Effects are seen by the pages' own reports and the window titles."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from agent.client import Agent
from agent.client import errors as sdk_errors
from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, start_agent
from tests.waiting import wait_until
from tests.x11.pages import PageServer
from tests.x11.test_browser import wait_for_title


@pytest.fixture(scope="module")
def pages() -> Iterator[PageServer]:
    server = PageServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser_agent(desktop: DevDesktop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)
    running = start_agent(env, tmp_path_factory.mktemp("sdk-browser"), "--display", desktop.display)
    yield running
    running.stop()


@pytest.fixture()
def sdk(browser_agent: RunningAgent) -> Iterator[Agent]:
    with Agent(browser_agent.url, token=browser_agent.token) as client:
        yield client


def test_tabs_by_id_and_per_request_fields(sdk: Agent, pages: PageServer, desktop: DevDesktop) -> None:
    first = sdk.go_to_url(f"{pages.url}/page/sdkone").tab_id
    second = sdk.new_tab(url=f"{pages.url}/page/sdktwo").tab_id
    wait_for_title(desktop, "sdktwo")

    assert sdk.switch_tab(first).tab_id == first
    wait_for_title(desktop, "sdkone")
    pages.wait_for("sdktwo", "hidden")  # the page saw itself go to the background
    # tab_id on a call reads the tab named, not the current one.
    assert "page sdktwo marker" in sdk.get_html_content(tab_id=second).html
    assert "page sdkone marker" in sdk.get_html_content().html
    # include_context on a desktop action: the answer carries the page it left.
    clicked = sdk.screen_size(include_context=True)
    context = clicked.page_context  # type: ignore[attr-defined]
    assert context.tab_id == first and context.title == "sdkone"
    assert not hasattr(sdk.screen_size(), "page_context")

    closed = sdk.close_tab(second)
    assert (closed.tab_id, closed.current_tab_id) == (second, first)
    pages.wait_for("sdktwo", "pagehide")
    assert second not in [tab.tab_id for tab in sdk.list_tabs().tabs]
    with pytest.raises(sdk_errors.NotFound) as gone:
        sdk.switch_tab(second)
    assert gone.value.code == "TAB_NOT_FOUND"


def test_a_closed_browser_is_reported_not_retried(sdk: Agent, pages: PageServer) -> None:
    sdk.go_to_url(f"{pages.url}/page/sdkbefore")
    pid = sdk.browser_status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: sdk.browser_status().last_exit, timeout=15, what="the exit to be noticed")
    with pytest.raises(sdk_errors.BrowserClosed) as closed:
        sdk.get_html_content()  # a retry would read a fresh about:blank instead
    assert "SIGKILL" in closed.value.message
    assert sdk.browser_status().attached is False  # nothing relaunched it behind the caller's back
