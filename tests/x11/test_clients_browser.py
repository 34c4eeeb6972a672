"""The SDK's and the MCP server's browser calls against a real agent and Debian's Chromium: tabs
switched and closed by id, the per-request fields (tab_id, include_context) sent, and
BROWSER_CLOSED reported by the SDK, not retried into a fresh browser. Effects are seen by the
pages' own reports and the window titles."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from agent.client import Agent
from agent.client import errors as sdk_errors
from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, start_agent
from tests.waiting import wait_until
from tests.x11.pages import PageServer
from tests.x11.test_browser import wait_for_title
from tests.x11.test_mcp import over_http, over_stdio


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


async def _tabs_over_mcp(client: Client, pages: PageServer, desktop: DevDesktop, name: str) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for tab_tool in ("switch_tab", "close_tab"):
        schema = tools[tab_tool].input_schema
        assert "tab_id" in schema["properties"] and schema["required"] == ["tab_id"], schema
    for tool in ("go_to_url", "click", "get_html_content"):
        assert {"tab_id", "include_context"} <= tools[tool].input_schema["properties"].keys()

    async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        answer = await client.call_tool(tool, arguments)
        assert not answer.is_error and answer.structured_content is not None, answer.content
        result: dict[str, Any] = answer.structured_content
        return result

    first = (await call("go_to_url", {"url": f"{pages.url}/page/{name}one"}))["tab_id"]
    second = (await call("new_tab", {"url": f"{pages.url}/page/{name}two"}))["tab_id"]
    wait_for_title(desktop, f"{name}two")
    assert (await call("switch_tab", {"tab_id": first}))["tab_id"] == first
    wait_for_title(desktop, f"{name}one")
    pages.wait_for(f"{name}two", "hidden")
    html = await call("get_html_content", {"tab_id": second})
    assert f"page {name}two marker" in html["html"]
    moved = await call("move", {"x": 5, "y": 5, "include_context": True})
    assert moved["page_context"]["tab_id"] == first and moved["page_context"]["title"] == f"{name}one"
    assert (await call("close_tab", {"tab_id": second}))["current_tab_id"] == first
    pages.wait_for(f"{name}two", "pagehide")
    refused = await client.call_tool("switch_tab", {})
    assert refused.is_error
    text = next(block for block in refused.content if isinstance(block, types.TextContent)).text
    assert text.startswith("INVALID_ARGUMENT") and "tab_id" in text


async def test_mcp_tabs_over_stdio(
    browser_agent: RunningAgent, pages: PageServer, desktop: DevDesktop, tmp_path: Path
) -> None:
    async with over_stdio(browser_agent, tmp_path) as client:
        await _tabs_over_mcp(client, pages, desktop, "stdio")


async def test_mcp_tabs_over_streamable_http(
    browser_agent: RunningAgent, pages: PageServer, desktop: DevDesktop
) -> None:
    async with over_http(browser_agent) as client:
        await _tabs_over_mcp(client, pages, desktop, "http")
