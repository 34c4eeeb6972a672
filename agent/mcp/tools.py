"""MCP tools from the operation registry, and one MCP ``Server`` around a way to run them.

Every action of the registry (JSON in, JSON or image out) is a tool: its name is the action type,
its description the operation's summary and description, its input schema the request model's
JSON schema (less the action's type tag: the tool's name). Aliases (another name of an action) and
the peers' vocabularies (seed 000/002 shapes) are left out: an MCP host gets one name per thing.

A tool call runs through an ``Invoke`` callable: in the daemon the operation itself, in
``computer-agent mcp`` the SDK's POST /actions. Either answers the action's ``result`` object; an
image becomes MCP image content, anything else JSON text plus ``structuredContent``, and an error
(the agent's envelope) an MCP tool error carrying its code and message, never a protocol failure.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext

from agent import __version__
from agent.actions.registry import Operation, load_all

# The action's type tag: the tool's name says it. Every other field the operation accepts is in
# the tool's schema, the per-request ones (tab_id, include_context) too, required when required.
HIDDEN_FIELDS = ("type",)
PEERS_MODULE = "agent.actions.peers"
INSTRUCTIONS = (
    "Tools that drive a Linux desktop (X11): screenshot to see the screen, click/type/key to act, "
    "list_windows and accessibility_tree/accessibility_find to locate things, exec to run commands. "
    "Coordinates are screen pixels of the screenshot at scale 1."
)


class ToolFailed(Exception):
    """An action failed: the agent's error code and message (an MCP tool error, isError=true)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# (action type, arguments) -> the action's result object; raises ToolFailed.
Invoke = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def tool_operations(operations: Iterable[Operation] | None = None) -> list[Operation]:
    """The actions that are tools: one per handler (no aliases), not the peers' vocabularies."""
    seen: set[Any] = set()
    chosen = []
    for operation in operations if operations is not None else load_all().actions():
        if operation.handler in seen or operation.handler.__module__ == PEERS_MODULE:
            continue
        seen.add(operation.handler)
        chosen.append(operation)
    return chosen


def input_schema(operation: Operation) -> dict[str, Any]:
    """The request model's JSON schema as a tool's input schema (the type tag removed)."""
    schema = copy.deepcopy(operation.model.model_json_schema())
    properties = schema.setdefault("properties", {})
    for name in HIDDEN_FIELDS:
        properties.pop(name, None)
    if "required" in schema:
        schema["required"] = [name for name in schema["required"] if name not in HIDDEN_FIELDS]
    schema["type"] = "object"
    schema.pop("title", None)
    return schema


def tool(operation: Operation) -> types.Tool:
    description = operation.summary
    if operation.description:
        description += "\n\n" + operation.description.strip()
    return types.Tool(
        name=operation.type,
        description=description,
        input_schema=input_schema(operation),
        annotations=types.ToolAnnotations(read_only_hint=operation.method == "GET"),
    )


def content(operation: Operation, result: dict[str, Any]) -> types.CallToolResult:
    """An action's result as MCP content: image content for images, else JSON text."""
    if operation.media == "image":
        summary = f"{result['width']}x{result['height']} {result['format']} screenshot"
        return types.CallToolResult(
            content=[
                types.ImageContent(data=result["image"], mime_type=f"image/{result['format']}"),
                types.TextContent(text=summary),
            ]
        )
    shot = result.get("screenshot")
    if isinstance(shot, dict) and "image" in shot:  # screenshot_after: the settled screen as an image
        rest = {**result, "screenshot": {k: v for k, v in shot.items() if k != "image"}}
        return types.CallToolResult(
            content=[
                types.TextContent(text=json.dumps(rest, ensure_ascii=False)),
                types.ImageContent(data=shot["image"], mime_type=f"image/{shot['format']}"),
            ],
            structured_content=rest,
        )
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps(result, ensure_ascii=False))], structured_content=result
    )


def tool_error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def build_server(invoke: Invoke, operations: list[Operation] | None = None) -> Server[Any]:
    """The MCP server: list_tools from the registry, call_tool through ``invoke``."""
    chosen = {operation.type: operation for operation in (operations or tool_operations())}
    tools = [tool(operation) for operation in chosen.values()]

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        operation = chosen.get(params.name)
        if operation is None:
            return tool_error(f"INVALID_ARGUMENT: no tool {params.name!r}; tools/list names them")
        try:
            result = await invoke(operation.type, dict(params.arguments or {}))
        except ToolFailed as exc:
            return tool_error(f"{exc.code}: {exc.message}")
        return content(operation, result)

    return Server(
        "computer-agent",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
