"""The Python SDK: ``Agent`` (blocking) and ``AsyncAgent`` (asyncio), one typed method per
operation of the agent, generated from the same registry and models the server uses.

    from agent.client import Agent
    with Agent("http://127.0.0.1:8000", token="...") as agent:
        agent.click(100, 200)
        agent.screenshot().save("shot.png")
"""

from agent.actions.registry import load_all

# The SDK imports result models from operation modules, which register their operations as they
# are imported; loading them all first keeps the registry (and so the OpenAPI document's order)
# the same whichever module a process imports first.
load_all()

from agent.client.calls import Screenshot  # noqa: E402
from agent.client.errors import AgentError, AgentUnreachable  # noqa: E402
from agent.client.sdk import Agent, AsyncAgent  # noqa: E402
from agent.client.transfers import AsyncDownload, Download  # noqa: E402

__all__ = ["Agent", "AgentError", "AgentUnreachable", "AsyncAgent", "AsyncDownload", "Download", "Screenshot"]
