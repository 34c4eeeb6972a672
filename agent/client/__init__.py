"""The Python SDK: ``Agent`` (blocking) and ``AsyncAgent`` (asyncio), one typed method per
operation of the agent, generated from the same registry and models the server uses.

    from agent.client import Agent
    with Agent("http://127.0.0.1:8000", token="...") as agent:
        agent.click(100, 200)
        agent.screenshot().save("shot.png")

The names are imported on first use, so ``computer-agent serve`` (whose parser registers the
client commands) does not load the client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.client.calls import Screenshot
    from agent.client.errors import AgentError, AgentUnreachable
    from agent.client.sdk import Agent, AsyncAgent
    from agent.client.transfers import AsyncDownload, Download

__all__ = ["Agent", "AgentError", "AgentUnreachable", "AsyncAgent", "AsyncDownload", "Download", "Screenshot"]
_HOMES = {
    "Agent": "agent.client.sdk",
    "AsyncAgent": "agent.client.sdk",
    "AgentError": "agent.client.errors",
    "AgentUnreachable": "agent.client.errors",
    "Screenshot": "agent.client.calls",
    "AsyncDownload": "agent.client.transfers",
    "Download": "agent.client.transfers",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'agent.client' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
