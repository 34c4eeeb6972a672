"""The MCP server through the official mcp SDK's client, against a real agent on Xvfb: over
stdio (``computer-agent mcp`` as a subprocess) and over streamable HTTP (the daemon's /mcp).
Tools are listed from the registry, a screenshot is image content, a click moves the pointer
that xdotool reads, and a bad argument is a tool error while the server goes on serving."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from agent.session.devdesktop import DevDesktop
from tests.conftest import AGENT_BIN, RunningAgent, run_observer


def pointer(desktop: DevDesktop) -> tuple[int, int]:
    fields = dict(part.split(":") for part in run_observer(desktop, "xdotool", "getmouselocation").split())
    return int(fields["x"]), int(fields["y"])


@asynccontextmanager
async def over_stdio(agent: RunningAgent, tmp_path: Path) -> AsyncIterator[Client]:
    token_file = tmp_path / "token"
    token_file.write_text(agent.token)
    environment = {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "PATH": os.environ.get("PATH", "")}
    parameters = StdioServerParameters(
        command=str(AGENT_BIN),
        args=["mcp", "--url", agent.url, "--token-file", str(token_file)],
        env=environment,
    )
    async with Client(parameters) as client:
        yield client


@asynccontextmanager
async def over_http(agent: RunningAgent, token: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token or agent.token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(f"{agent.url}/mcp", http_client=http)) as client,
    ):
        yield client


async def _exercise(client: Client, desktop: DevDesktop) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {
        "click",
        "type",
        "key",
        "screenshot",
        "list_windows",
        "exec",
        "accessibility_tree",
    } <= tools.keys()
    assert "left_click" not in tools and "computer_action" not in tools  # aliases, peers' shapes
    click_schema = tools["click"].input_schema
    assert {"x", "y", "button"} <= click_schema["properties"].keys() and "type" not in click_schema[
        "properties"
    ]

    shot = await client.call_tool("screenshot", {"format": "png"})
    assert not shot.is_error
    image = next(block for block in shot.content if isinstance(block, types.ImageContent))
    assert image.mime_type == "image/png"
    with Image.open(io.BytesIO(base64.b64decode(image.data))) as decoded:
        assert decoded.size == (1280, 720)

    done = await client.call_tool("click", {"x": 234, "y": 123})
    assert not done.is_error, done.content
    assert pointer(desktop) == (234, 123)

    observed = await client.call_tool("click", {"x": 240, "y": 130, "screenshot_after": {}})
    assert not observed.is_error and pointer(desktop) == (240, 130)
    settled = next(block for block in observed.content if isinstance(block, types.ImageContent))
    with Image.open(io.BytesIO(base64.b64decode(settled.data))) as decoded:
        assert decoded.size == (1280, 720)

    wrong = await client.call_tool("click", {"x": 10, "y": 10, "button": "thumb"})
    assert wrong.is_error
    text = next(block for block in wrong.content if isinstance(block, types.TextContent)).text
    assert text.startswith("INVALID_ARGUMENT") and "button" in text
    missing = await client.call_tool("window_size", {"window_id": "0x7fffffe"})
    assert missing.is_error and "WINDOW_NOT_FOUND" in str(missing.content)

    # The server is still serving after the errors.
    again = await client.call_tool("move", {"x": 321, "y": 210.6})
    assert not again.is_error and pointer(desktop) == (321, 211)
    ran = await client.call_tool("exec", {"command": ["printf", "%s", "via mcp"]})
    assert ran.structured_content is not None and ran.structured_content["stdout"] == "via mcp"
    # A message far larger than one read of the socket arrives whole.
    counted = await client.call_tool("exec", {"command": ["wc", "-c"], "stdin": "x" * 1_000_000})
    assert (
        counted.structured_content is not None and counted.structured_content["stdout"].strip() == "1000000"
    )


async def test_mcp_over_stdio(agent: RunningAgent, desktop: DevDesktop, tmp_path: Path) -> None:
    async with over_stdio(agent, tmp_path) as client:
        await _exercise(client, desktop)


async def test_mcp_over_streamable_http(agent: RunningAgent, desktop: DevDesktop) -> None:
    async with over_http(agent) as client:
        await _exercise(client, desktop)


async def test_mcp_http_is_behind_the_same_auth_and_origin_checks(agent: RunningAgent) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    async with httpx2.AsyncClient(base_url=agent.url) as http:
        refused = await http.post("/mcp", json=message, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHENTICATED"
        bearer = {**headers, "Authorization": f"Bearer {agent.token}"}
        page = await http.post("/mcp", json=message, headers={**bearer, "Origin": "https://evil.example"})
        assert page.status_code == 403 and page.json()["error"]["code"] == "HOST_NOT_ALLOWED"
        form = await http.post("/mcp", content=b"{}", headers={**bearer, "Content-Type": "text/plain"})
        assert form.status_code == 415
        listed = await http.post("/mcp", json=message, headers=bearer)
        assert listed.status_code == 200, listed.text
        assert any(tool["name"] == "click" for tool in listed.json()["result"]["tools"])


async def test_switched_off_capabilities_are_not_tools(desktop: DevDesktop, tmp_path: Path) -> None:
    from tests.conftest import start_agent

    env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)
    switched_off = start_agent(env, tmp_path, "--display", desktop.display, "--exec", "false")
    try:
        async with over_http(switched_off) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "click" in names and not names & {"exec", "bash", "process_start", "files_list"}
            refused = await client.call_tool("exec", {"command": "true"})
            assert refused.is_error and "no tool 'exec'" in str(refused.content)
    finally:
        switched_off.stop()
