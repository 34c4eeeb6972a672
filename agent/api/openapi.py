"""The OpenAPI 3.1 document, generated from the operation registry: every route is declared there."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agent import __version__
from agent.actions import leniency
from agent.actions.capabilities import REFUSALS, SWITCHES
from agent.actions.registry import Operation, Registry, load_all
from agent.api.action_routes import ActionAnswer, BatchAnswer, BatchRequest
from agent.api.coordinate_space import SPACE_RULES, openapi_parameters
from agent.api.middleware import ERROR_HEADER
from agent.api.replies import NDJSON, SSE
from agent.errors import AgentError
from agent.mcp import document as mcp_document
from agent.models.base import ImageJSON
from agent.models.live import DesktopEvent, SubscribeMessage, UnsubscribeMessage, WsAnswer, WsErrorAnswer
from agent.x11 import keyboard  # noqa: F401  (defines KeymapFull: the code list names every error class)

REF = "#/components/schemas/{model}"
ERROR = {"$ref": "#/components/responses/Error"}

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
                "message": {"type": "string", "description": "For people; may change"},
                "details": {"type": "object"},
            },
        },
        "request_id": {"type": "string"},
    },
}

# The messages of a WebSocket route (OpenAPI has no words for them): what each side sends.
WEBSOCKET_MESSAGES: dict[str, Any] = {
    "client": {
        "description": "Text frames: an action of POST /actions with a request_id, or a control message",
        "oneOf": [
            {"$ref": REF.format(model="Action")},
            {"$ref": REF.format(model=SubscribeMessage.__name__)},
            {"$ref": REF.format(model=UnsubscribeMessage.__name__)},
        ],
    },
    "server": {
        "description": "Text frames: answers (with request_id) and subscribed events (without); a binary "
        "frame only ever follows an answer whose `binary` field announces it",
        "oneOf": [
            {"$ref": REF.format(model=WsAnswer.__name__)},
            {"$ref": REF.format(model=WsErrorAnswer.__name__)},
            {"$ref": REF.format(model=DesktopEvent.__name__)},
        ],
    },
}

BATCH_ERRORS = {"400": ERROR, "401": ERROR, "403": ERROR, "415": ERROR, "503": ERROR}


def _error_classes(base: type[AgentError] = AgentError) -> list[type[AgentError]]:
    found = [base]
    for sub in base.__subclasses__():
        found += _error_classes(sub)
    return found


def error_schema() -> dict[str, Any]:
    """The envelope, with every code the agent's error classes can produce."""
    pairs = sorted({(cls.status, cls.code) for cls in _error_classes() if not cls.__dict__.get("abstract")})
    codes = sorted({code for _, code in pairs})
    table = "; ".join(f"{code} ({status})" for status, code in pairs)
    schema: dict[str, Any] = json.loads(json.dumps(ERROR_SCHEMA))
    code = schema["properties"]["error"]["properties"]["code"]
    code["enum"] = codes
    code["description"] = f"Stable error code: {table}"
    return schema


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


BINARY = {"schema": {"type": "string", "format": "binary"}}


def _image_content() -> dict[str, Any]:
    return {
        "image/png": BINARY,
        "image/jpeg": BINARY,
        "image/webp": BINARY,
        "application/json": {"schema": _ref(ImageJSON)},
    }


def _content(operation: Operation) -> dict[str, Any]:
    """The 200 answer's content, by the declared media type."""
    result = operation.result
    if operation.media == "image":
        return _image_content()
    if operation.media == "bytes":
        return {"application/octet-stream": BINARY}
    if operation.media == "text":
        return {"text/plain": {"schema": {"type": "string"}}}
    if operation.media == "document":
        return {"application/json": {"schema": {"type": "object"}}}
    if operation.media == "frames":
        return {"multipart/x-mixed-replace": BINARY}
    if operation.media == "html":
        return {"text/html": {"schema": {"type": "string"}}}
    assert result is not None, f"{operation.type}: a JSON or event answer needs its model"
    if operation.media == "events":
        return {NDJSON: {"schema": _ref(result)}, SSE: {"schema": {"type": "string"}}}
    return {"application/json": {"schema": _ref(result)}}


def _responses(operation: Operation) -> dict[str, Any]:
    if operation.media == "websocket":  # no 200: the answer is the upgrade, then messages
        return {"101": {"description": operation.ok}, **{str(s): ERROR for s in operation.error_statuses}}
    ok: dict[str, Any] = {"description": operation.ok, "content": _content(operation)}
    if operation.media == "image":
        ok["description"] = "The image (or JSON with base64=true)"
        ok["headers"] = {
            "X-Screen-Width": {"schema": {"type": "integer"}},
            "X-Screen-Height": {"schema": {"type": "integer"}},
        }
    responses: dict[str, Any] = {"200": ok}
    if operation.media == "frames" and operation.result is not None:  # the WebSocket form of the stream
        responses["101"] = {
            "description": "Switching Protocols (on a WebSocket upgrade): this text message, then binary JPEG frames",
            "content": {"application/json": {"schema": _ref(operation.result)}},
        }
    for status, description in operation.replies.items():
        responses[str(status)] = {**ok, "description": description}
    for status in operation.error_statuses:
        responses[str(status)] = ERROR
    needs = [operation.capability, operation.conditional.capability if operation.conditional else None]
    codes = sorted({REFUSALS[capability].code for capability in needs if capability is not None})
    if codes:  # the one 403 an operation declares itself: its capability switched off
        responses["403"] = {
            "$ref": ERROR["$ref"],
            "description": f"{' or '.join(codes)}: switched off on this agent (permanent: no Retry-After)",
        }
    return responses


def _parameters(operation: Operation, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Path parameters, request headers mapped to fields, and the query fields of query routes."""
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    path_params = operation.path_params
    header_fields = {field: header for header, field in operation.headers.items()}

    def parameter(name: str, where: str, field: str) -> dict[str, Any]:
        prop = properties.get(field, {"type": "string"})
        found: dict[str, Any] = {"name": name, "in": where, "required": where == "path" or field in required}
        found["schema"] = prop
        return found

    parameters = [parameter(name, "path", name) for name in path_params]
    parameters += [parameter(header, "header", field) for field, header in header_fields.items()]
    if operation.from_query:
        parameters += [
            parameter(name, "query", name)
            for name in properties
            if name not in path_params and name not in header_fields and name != "type"
        ]
    return parameters


def _description(operation: Operation) -> str | None:
    parts = [operation.description] if operation.description else []
    if operation.capability is not None:
        parts.append(
            f"Needs the `{operation.capability}` capability (off: --{SWITCHES[operation.capability].option} false)."
        )
    if operation.conditional is not None:
        needs = operation.conditional
        parts.append(
            f"Needs the `{needs.capability}` capability when {needs.when} (off: --{SWITCHES[needs.capability].option} false)."
        )
    return " ".join(parts) or None


def _body_schema(operation: Operation, schemas: dict[str, Any]) -> str:
    """The name of the REST body's schema: the request model without its path parameters (which
    /actions and /batch take in the body), e.g. ``SignalRequestBody``."""
    name = operation.model.__name__
    if not operation.path_params:
        return name
    body: dict[str, Any] = json.loads(json.dumps(schemas[name]))
    for param in operation.path_params:
        body.get("properties", {}).pop(param, None)
    body["required"] = [field for field in body.get("required", []) if field not in operation.path_params]
    if not body["required"]:
        del body["required"]
    body["title"] = f"{body.get('title', name)} (body)"
    schemas[f"{name}Body"] = body
    return f"{name}Body"


def path_item(operation: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI operation object of one declared route."""
    schema = schemas[operation.model.__name__]
    item: dict[str, Any] = {"operationId": operation.type, "summary": operation.summary}
    description = _description(operation)
    if description:
        item["description"] = description
    item["tags"] = [operation.tag]
    if operation.public:
        item["security"] = []
    capabilities = [
        c for c in (operation.capability, operation.conditional and operation.conditional.capability) if c
    ]
    if capabilities:
        item["x-capabilities"] = [str(c) for c in capabilities]
    item["parameters"] = _parameters(operation, schema) + openapi_parameters(
        query_names=operation.space_query
    )
    if operation.body == "bytes":
        # No body is a body of no bytes (an empty file).
        item["requestBody"] = {"required": False, "content": {"application/octet-stream": BINARY}}
    elif not operation.from_query:
        body_name = _body_schema(operation, schemas)
        item["requestBody"] = {
            "required": bool(schemas[body_name].get("required")),
            "content": {"application/json": {"schema": {"$ref": REF.format(model=body_name)}}},
        }
    item["responses"] = {**_responses(operation), "default": ERROR}
    if operation.ticket:
        item["security"] = [{"bearer": []}, {"ticket": []}]
    if operation.media == "websocket":
        item["x-websocket"] = WEBSOCKET_MESSAGES
    return item


def _schemas(registry: Registry) -> dict[str, Any]:
    models: dict[type[BaseModel], Any] = {}
    for operation in registry:
        models.setdefault(operation.model, "validation")
    for operation in registry:
        if operation.result is not None:
            models.setdefault(operation.result, "serialization")
    models.update({BatchRequest: "validation", BatchAnswer: "serialization", ActionAnswer: "serialization"})
    models.update({SubscribeMessage: "validation", UnsubscribeMessage: "validation"})
    models.update({WsAnswer: "serialization", WsErrorAnswer: "serialization", DesktopEvent: "serialization"})
    models[ImageJSON] = "serialization"
    _, definitions = models_json_schema(list(models.items()), ref_template=REF)
    schemas: dict[str, Any] = definitions.get("$defs", {})
    for schema in schemas.values():
        leniency.document(schema)
    schemas["Error"] = error_schema()
    return schemas


def build_document() -> dict[str, Any]:
    registry = load_all()
    schemas = _schemas(registry)
    paths: dict[str, Any] = {}
    for operation in registry:
        if operation.route is not None:
            paths.setdefault(operation.route, {})[operation.method.lower()] = path_item(operation, schemas)

    actions = registry.actions()
    union = {
        "oneOf": [_ref(action.model) for action in actions],
        "discriminator": {
            "propertyName": "type",
            "mapping": {action.type: REF.format(model=action.model.__name__) for action in actions},
        },
    }
    schemas["Action"] = union
    paths["/actions"] = {
        "post": {
            "operationId": "actions",
            "summary": "Run one action given as a tagged union",
            "description": "Capabilities are checked as on the action's own route (403 when switched off).",
            "tags": ["actions"],
            "parameters": openapi_parameters(),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": REF.format(model="Action")}}},
            },
            "responses": {
                "200": {
                    "description": "Done",
                    "content": {"application/json": {"schema": _ref(ActionAnswer)}},
                },
                **BATCH_ERRORS,
                "default": ERROR,
            },
        }
    }
    paths["/batch"] = {
        "post": {
            "operationId": "batch",
            "summary": "Run actions in order, atomically with respect to other input",
            "description": "Every action is checked and validated before the first runs: a switched-off "
            "capability refuses the whole batch (403), an invalid action too (400).",
            "tags": ["actions"],
            "parameters": openapi_parameters(),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(BatchRequest)}},
            },
            "responses": {
                "200": {
                    "description": "Per-step results",
                    "content": {"application/json": {"schema": _ref(BatchAnswer)}},
                },
                **BATCH_ERRORS,
                "default": ERROR,
            },
        }
    }
    paths[mcp_document.ROUTE] = mcp_document.path_item(ERROR)

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "computer-agent",
            "version": __version__,
            "description": "The computer command service inside a cloud desktop VM. Coordinates are integer "
            "screen pixels, (0,0) top-left. Every route but /health needs `Authorization: Bearer <token>`. "
            + leniency.POLICY
            + f" Every error the agent answers carries `{ERROR_HEADER}: <code>`; the codes name what "
            "is missing or refused (WINDOW_NOT_FOUND, ROUTE_NOT_FOUND, EXEC_DISABLED, ...). GET routes "
            "also answer HEAD. Every route takes the header X-Coordinate-Space: " + SPACE_RULES,
            "x-leniency": leniency.POLICY,
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "ticket": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "ticket",
                    "description": "A single-use ticket from POST /ws/ticket (routes that list it only)",
                },
            },
            "responses": {
                "Error": {
                    "description": "An error of the agent's own: its code names what is missing, "
                    "refused or conflicting (WINDOW_NOT_FOUND, not a bare NOT_FOUND)",
                    "headers": {
                        ERROR_HEADER: {
                            "description": "The error code, on every error the agent itself answers: "
                            "a proxy in front can tell the agent's errors from its own",
                            "schema": {"type": "string"},
                        },
                    },
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        },
    }
