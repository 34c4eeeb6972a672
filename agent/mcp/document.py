"""/mcp in the OpenAPI document (no mcp SDK import: the document is built without it)."""

from __future__ import annotations

from typing import Any

ROUTE = "/mcp"

# A request the stateless transport answers by itself (no initialize first): the docs' example.
EXAMPLE_CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "screen_size", "arguments": {}},
}
EXAMPLE_ANSWER = {
    "jsonrpc": "2.0",
    "id": 1,
    "result": {
        "content": [{"type": "text", "text": '{"width": 1280, "height": 720}'}],
        "structuredContent": {"width": 1280, "height": 720},
        "isError": False,
    },
}
# What MCP clients send, and what the transport requires (else 406): docs/api.md's curl sends it.
ACCEPT = "application/json, text/event-stream"

JSONRPC_MESSAGE = {
    "type": "object",
    "description": "One JSON-RPC 2.0 message of the Model Context Protocol (initialize, tools/list, "
    "tools/call, notifications...). A request has an `id` and gets a 200 answer; a message "
    "without one is a notification (202, no body).",
    "properties": {
        "jsonrpc": {"type": "string", "const": "2.0"},
        "id": {"anyOf": [{"type": "string"}, {"type": "integer"}], "description": "A request's id"},
        "method": {"type": "string", "examples": ["tools/call"]},
        "params": {"type": "object"},
    },
    "required": ["jsonrpc"],
    "examples": [EXAMPLE_CALL],
}


def path_item(error: dict[str, Any]) -> dict[str, Any]:
    """POST /mcp: the MCP streamable-HTTP transport (stateless, JSON answers)."""
    return {
        "post": {
            "operationId": "mcp",
            "summary": "The agent's tools over MCP (streamable HTTP)",
            "description": "The Model Context Protocol's streamable-HTTP transport, stateless: each POST "
            "carries one JSON-RPC message and is answered with JSON. Tools are the registry's actions "
            "(tools/list); a screenshot is image content; an error is a tool result with isError. "
            "Send `Accept: application/json, text/event-stream` as MCP clients do. GET (a server "
            "stream) is not offered (405).",
            "tags": ["mcp"],
            "x-request-headers": {"Accept": ACCEPT},  # shown in docs/api.md's curl example
            "requestBody": {"required": True, "content": {"application/json": {"schema": JSONRPC_MESSAGE}}},
            "responses": {
                "200": {
                    "description": "The JSON-RPC answer",
                    "content": {
                        "application/json": {"schema": {"type": "object", "examples": [EXAMPLE_ANSWER]}}
                    },
                },
                "202": {"description": "A notification or response accepted (no body)"},
                "400": error,
                "401": error,
                "403": error,
                "406": {"description": "The Accept header names neither JSON nor an event stream"},
                "415": error,
                "default": error,
            },
        }
    }
