"""GET /openapi.json: the document, built once per process."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aiohttp import web

from agent.api.openapi import build_document


@cache
def _document_bytes() -> bytes:
    return json.dumps(build_document(), indent=1).encode()


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=_document_bytes(), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi, name="openapi", allow_head=False)


OPENAPI_PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "tags": ["health"],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1 document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
}
