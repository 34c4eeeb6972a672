"""``computer-agent mcp``: the MCP server over stdio (Claude Desktop, Claude Code, any host),
each tool call proxied to an agent with the SDK (POST /actions)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.client.sdk import AsyncAgent


def proxy(agent: AsyncAgent) -> Any:
    from agent.client.errors import AgentError
    from agent.mcp.tools import ToolFailed

    async def invoke(type: str, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            return await agent.action(type, **arguments)
        except AgentError as exc:
            raise ToolFailed(exc.code, exc.message) from None

    return invoke


async def serve_stdio(url: str | None, token_file: str | None) -> None:
    from mcp.server.stdio import stdio_server

    from agent.client.sdk import AsyncAgent
    from agent.mcp.tools import build_server

    async with AsyncAgent(url, token_file=token_file) as agent:
        server = build_server(proxy(agent))
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())


def _cmd_mcp(args: argparse.Namespace) -> int:
    import anyio

    # stdout carries the protocol: every log line goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    anyio.run(serve_stdio, args.url, args.token_file)
    return 0


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "mcp",
        help="serve the agent's tools to an MCP host over stdio",
        description="An MCP server on stdin/stdout whose tools call the agent at --url.",
    )
    parser.add_argument(
        "--url", default=argparse.SUPPRESS, help="the agent's URL (default: $COMPUTER_AGENT_URL)"
    )
    parser.add_argument(
        "--token-file",
        default=argparse.SUPPRESS,  # or before the subcommand: computer-agent --url U mcp
        help="file holding the bearer token (default: $COMPUTER_AGENT_TOKEN_FILE)",
    )
    parser.set_defaults(func=_cmd_mcp)
