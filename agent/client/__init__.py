"""The Python SDK: ``Agent`` (blocking) and ``AsyncAgent`` (asyncio), one typed method per
operation of the agent, generated from the same registry and models the server uses.

    from agent.client import Agent
    with Agent("http://127.0.0.1:8000", token="...") as agent:
        agent.click(100, 200)
        agent.screenshot().save("shot.png")
"""

from agent.client.calls import Screenshot
from agent.client.errors import AgentError, AgentUnreachable
from agent.client.sdk import Agent, AsyncAgent
from agent.client.transfers import AsyncDownload, Download

__all__ = ["Agent", "AgentError", "AgentUnreachable", "AsyncAgent", "AsyncDownload", "Download", "Screenshot"]
