"""The OpenAPI 3.1 document, generated from the registry's models and the route modules."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agent import __version__
from agent.actions.registry import load_all
from agent.api.action_routes import ActionAnswer, BatchAnswer, BatchRequest
from agent.errors import AgentError
from agent.models.base import ImageJSON

REF = "#/components/schemas/{model}"
PATH_PARAM = re.compile(r"{(\w+)}")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "request_id"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable error code; see the list in the description",
                },
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        },
        "request_id": {"type": "string"},
    },
}

ERROR_RESPONSES = {
    "400": {"$ref": "#/components/responses/Error"},
    "401": {"$ref": "#/components/responses/Error"},
    "503": {"$ref": "#/components/responses/Error"},
}


def _error_classes(base: type[AgentError] = AgentError) -> list[type[AgentError]]:
    found = [base]
    for sub in base.__subclasses__():
        found += _error_classes(sub)
    return found


def error_schema() -> dict[str, Any]:
    """The envelope, with every code the agent's error classes can produce."""
    pairs = sorted({(cls.status, cls.code) for cls in _error_classes()})
    codes = sorted({code for _, code in pairs})
    table = "; ".join(f"{code} ({status})" for status, code in pairs)
    schema: dict[str, Any] = json.loads(json.dumps(ERROR_SCHEMA))
    code = schema["properties"]["error"]["properties"]["code"]
    code["enum"] = codes
    code["description"] = f"Stable error code: {table}"
    return schema


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _image_response() -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "description": "The image (or JSON with base64=true)",
        "headers": {
            "X-Screen-Width": {"schema": {"type": "integer"}},
            "X-Screen-Height": {"schema": {"type": "integer"}},
        },
        "content": {
            "image/png": binary,
            "image/jpeg": binary,
            "image/webp": binary,
            "application/json": {"schema": _ref(ImageJSON)},
        },
    }


def build_document() -> dict[str, Any]:
    registry = load_all()
    models: list[tuple[type[BaseModel], Any]] = [(action.model, "validation") for action in registry]
    for action in registry:
        if action.result is not None:
            models.append((action.result, "serialization"))
    models += [
        (BatchRequest, "validation"),
        (BatchAnswer, "serialization"),
        (ActionAnswer, "serialization"),
        (ImageJSON, "serialization"),
    ]
    _, definitions = models_json_schema(models, ref_template=REF)
    schemas: dict[str, Any] = definitions.get("$defs", {})
    schemas["Error"] = error_schema()

    paths: dict[str, Any] = {}
    for action in registry:
        if action.route is None:
            continue
        path_params = PATH_PARAM.findall(action.route)
        schema = schemas[action.model.__name__]
        operation: dict[str, Any] = {
            "operationId": action.type,
            "summary": action.summary,
            "tags": [action.tag],
            "parameters": [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": schema.get("properties", {}).get(name, {"type": "string"}),
                }
                for name in path_params
            ],
        }
        if action.method == "GET":
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                if name in path_params or name == "type":
                    continue
                operation["parameters"].append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop}
                )
        else:
            operation["requestBody"] = {
                "required": bool(set(schema.get("required", [])) - set(path_params)),
                "content": {"application/json": {"schema": _ref(action.model)}},
            }
        if action.result is None:
            ok: dict[str, Any] = _image_response()
        else:
            ok = {"description": "Done", "content": {"application/json": {"schema": _ref(action.result)}}}
        operation["responses"] = {"200": ok, **ERROR_RESPONSES}
        if path_params:
            operation["responses"]["404"] = {"$ref": "#/components/responses/Error"}
        paths.setdefault(action.route, {})[action.method.lower()] = operation

    union = {
        "oneOf": [_ref(action.model) for action in registry],
        "discriminator": {
            "propertyName": "type",
            "mapping": {action.type: REF.format(model=action.model.__name__) for action in registry},
        },
    }
    schemas["Action"] = union
    paths["/actions"] = {
        "post": {
            "operationId": "actions",
            "summary": "Run one action given as a tagged union",
            "tags": ["actions"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Action")}}},
            },
            "responses": {
                "200": {
                    "description": "Done",
                    "content": {"application/json": {"schema": _ref(ActionAnswer)}},
                },
                **ERROR_RESPONSES,
            },
        }
    }
    paths["/batch"] = {
        "post": {
            "operationId": "batch",
            "summary": "Run actions in order, atomically with respect to other input",
            "tags": ["actions"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(BatchRequest)}},
            },
            "responses": {
                "200": {
                    "description": "Per-step results",
                    "content": {"application/json": {"schema": _ref(BatchAnswer)}},
                },
                **ERROR_RESPONSES,
            },
        }
    }
    from agent.api.app import ROUTE_MODULES

    for name in ROUTE_MODULES:
        paths.update(getattr(importlib.import_module(name), "OPENAPI_PATHS", {}))

    for item in paths.values():
        for operation in item.values():
            operation.setdefault("responses", {}).setdefault(
                "default", {"$ref": "#/components/responses/Error"}
            )

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "computer-agent",
            "version": __version__,
            "description": "The computer command service inside a cloud desktop VM. Coordinates are integer "
            "screen pixels, (0,0) top-left. Every route but /health needs `Authorization: Bearer <token>`.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
                "Readiness": {
                    "description": "Each readiness check",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["ready", "checks"],
                                "properties": {"ready": {"type": "boolean"}, "checks": {"type": "object"}},
                            }
                        }
                    },
                },
            },
        },
    }
