"""Write docs/api.md, the HTTP contract, from the served OpenAPI document.

``python -m agent.codegen.docs`` (``make docs``) rewrites it; tests/unit/test_api_docs.py fails
when it differs from what this writes now. Every route gets its parameters, an example request
(curl) and an example answer, all derived from the document's schemas: field examples and
defaults where the models give them, placeholders by type elsewhere.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from agent.api.openapi import build_document

DOC_FILE = Path(__file__).resolve().parent.parent.parent / "docs" / "api.md"
IGNORED = ("request_id", "include_context", "tab_id")  # accepted on every route, described once
PLACEHOLDERS = {"string": "text", "integer": 100, "number": 100, "boolean": False, "null": None}
NAMED = {  # placeholders that read better than "text" for well-known field names
    "window_id": "0x2200003",
    "id": "p-1",
    "path": "notes.txt",
    "key": "ctrl+c",
    "text": "Hello",
    "command": "ls -l",
    "app": "gedit",
    "role": "push button",
    "name": "OK",
    "format": "png",
}
MAX_DEPTH = 4
ANY_CASE = "The same values, in any case"  # agent.actions.leniency documents enums so


class Examples:
    """Example values from JSON schemas, resolving the document's references."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.schemas: dict[str, Any] = document["components"]["schemas"]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def value(self, schema: dict[str, Any], name: str = "", depth: int = 0, *, full: bool = False) -> Any:
        schema = self.resolve(schema)
        if schema.get("examples"):
            return schema["examples"][0]
        if "const" in schema:
            return schema["const"]
        if schema.get("default") is not None:
            return schema["default"]
        if "enum" in schema:
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [s for s in schema[key] if self.resolve(s).get("type") != "null"]
                return self.value(options[0], name, depth, full=full) if options else None
        if "allOf" in schema and "properties" not in schema:
            return self.value(schema["allOf"][0], name, depth, full=full)
        kind = schema.get("type", "object")
        kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
        if kind == "array":
            item = self.value(schema.get("items", {}), name, depth + 1, full=full)
            return [] if item is None or depth >= MAX_DEPTH else [item]
        if kind == "object":
            return self.object(schema, depth, full=full)
        if kind == "string" and "window id" in str(schema.get("description", "")).lower():
            return NAMED["window_id"]
        if name in NAMED and kind == "string":
            return NAMED[name]
        return PLACEHOLDERS.get(kind, "text")

    def object(self, schema: dict[str, Any], depth: int = 0, *, full: bool) -> dict[str, Any]:
        """An object's example: required fields and those with examples (``full``: every field)."""
        if depth >= MAX_DEPTH:
            return {}
        required = set(schema.get("required", []))
        result = {}
        for name, field in schema.get("properties", {}).items():
            if (
                name in IGNORED
                or (name == "type" and "const" in field)  # the operation's tag, not the caller's data
                or str(field.get("description", "")).startswith("Another name")
            ):
                continue
            wanted = full or name in required or "examples" in field or name in ("x", "y")
            if wanted:
                result[name] = self.value(field, name, depth + 1, full=full)
        return result


def _schema_type(schema: dict[str, Any], examples: Examples) -> str:
    schema = examples.resolve(schema)
    if "enum" in schema:
        return " | ".join(f"`{v}`" for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = [_schema_type(s, examples) for s in schema[key] if _shown(examples.resolve(s))]
            return " or ".join(dict.fromkeys(parts)) or "null"
    if schema.get("type") == "array":
        return f"array of {_schema_type(schema.get('items', {}), examples)}"
    return str(schema.get("type", schema.get("title", "object")))


def _shown(schema: dict[str, Any]) -> bool:
    """Whether a union member is worth naming (not null, not the any-case spelling of an enum)."""
    return schema.get("type") != "null" and schema.get("description") != ANY_CASE


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fields_table(rows: list[tuple[str, str, dict[str, Any], bool]], examples: Examples) -> list[str]:
    lines = ["| field | in | type | required | default | description |", "|---|---|---|---|---|---|"]
    for name, where, schema, required in rows:
        default = schema.get("default")
        lines.append(
            f"| `{name}` | {where} | {_cell(_schema_type(schema, examples))} | {'yes' if required else ''} | "
            f"{'' if default is None else '`' + _cell(json.dumps(default)) + '`'} | "
            f"{_cell(schema.get('description', ''))} |"
        )
    return lines


def _route(path: str, method: str, operation: dict[str, Any], examples: Examples) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", operation.get("summary", "") + "."]
    if operation.get("description"):
        lines += ["", operation["description"]]
    rows: list[tuple[str, str, dict[str, Any], bool]] = []
    query: dict[str, Any] = {}
    path_values: dict[str, Any] = {}
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if name in IGNORED or str(parameter["schema"].get("description", "")).startswith("Another name"):
            continue
        rows.append((name, parameter["in"], parameter["schema"], parameter.get("required", False)))
        if parameter["in"] == "path":
            path_values[name] = examples.value(parameter["schema"], name)
        elif parameter["in"] == "query" and parameter.get("required"):
            query[name] = examples.value(parameter["schema"], name)
    body_schema = (
        operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    body = None
    if body_schema is not None:
        resolved = examples.resolve(body_schema)
        for name, field in resolved.get("properties", {}).items():
            if (
                name in IGNORED
                or (name == "type" and "const" in field)  # the operation's tag, not the caller's data
                or str(field.get("description", "")).startswith("Another name")
            ):
                continue
            rows.append((name, "body", field, name in resolved.get("required", [])))
        body = examples.value(body_schema)
    if rows:
        lines += ["", *_fields_table(rows, examples)]
    headers = operation.get("x-request-headers", {})
    lines += ["", "```sh", _curl(method, path, path_values, query, body, headers=headers), "```"]
    lines += _answers(operation, examples)
    return lines


def _curl(
    method: str,
    path: str,
    path_values: dict[str, Any],
    query: dict[str, Any],
    body: Any,
    *,
    headers: dict[str, str] | None = None,
) -> str:
    url = path
    for name, value in path_values.items():
        url = url.replace("{" + name + "}", str(value))
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    curl = 'curl -H "Authorization: Bearer $TOKEN"'
    for name, value in (headers or {}).items():  # a route's own (POST /mcp: Accept)
        curl += f' -H "{name}: {value}"'
    if method == "post":
        curl += f" --json '{json.dumps(body if body is not None else {})}'"
    elif method == "put":
        curl += " -T ./local-file"
    elif method != "get":
        curl += f" -X {method.upper()}"
    return f"{curl} http://127.0.0.1:8000{url}"


def _answers(operation: dict[str, Any], examples: Examples) -> list[str]:
    lines: list[str] = []
    for status, answer in operation.get("responses", {}).items():
        if not status.startswith("2") and status != "101":  # 101: a WebSocket's answer (GET /ws, /screencast)
            continue
        content = answer.get("content", {})
        lines += ["", f"Answer `{status}` ({answer.get('description', '')}):"]
        if "application/json" in content:
            value = examples.value(content["application/json"].get("schema", {}), full=True)
            lines += ["", "```json", json.dumps(value, indent=1, ensure_ascii=False), "```"]
        elif content:
            lines += ["", ", ".join(f"`{kind}`" for kind in content) + " (the bytes or lines themselves)."]
    errors = sorted(status for status in operation.get("responses", {}) if status[0] in "45")
    if errors:
        lines += ["", "Errors: " + ", ".join(errors) + " (the error envelope)."]
    return lines


PREAMBLE = """# HTTP API

The contract of `computer-agent`, generated from the OpenAPI document the agent serves at
`/openapi.json` (`make docs` rewrites this file; a test fails when it is stale). The SDK, the
CLI and the MCP tools are generated from the same registry: see [clients.md](clients.md).

## Conventions

{description}

* **Auth**: `Authorization: Bearer <token>` (the file named by `--token-file`) on every route but
  `/health`. A missing or wrong token is `401 UNAUTHENTICATED`.
* **Bodies**: POST bodies are `application/json`; `PUT /files` takes `application/octet-stream`.
  Any other type is `415` (a web page cannot send these without the agent's consent).
* **Host and Origin**: a request naming a host the agent does not answer for, or sent by a web
  page (`Origin`), is `403 HOST_NOT_ALLOWED`.
* **Every request field** also accepts `request_id`, `include_context` and `tab_id` (ignored).
  Use the `X-Request-Id` header to correlate; every answer carries it.
* **Actions**: every operation below with a JSON or image answer is also an action type for
  `POST /actions` (`{{"type": "click", "x": 10, "y": 20}}`) and `POST /batch`.

## Errors

Every error is this envelope, with `X-Computer-Agent-Error: <code>` (and `Retry-After` on 429/503):

```json
{{"error": {{"code": "WINDOW_NOT_FOUND", "message": "no window 0x2200003 (it closed)", "details": {{}}}}, "request_id": "5f0c1a2b3c4d5e6f"}}
```

| code | status |
|---|---|
{codes}

## Routes
"""


def render(document: dict[str, Any] | None = None) -> str:
    document = document or build_document()
    examples = Examples(document)
    envelope = _error_codes(document)
    out = [
        PREAMBLE.format(
            description=document["info"]["description"],
            codes="\n".join(f"| `{code}` | {status} |" for status, code in envelope),
        )
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            tag = (operation.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((path, method, operation))
    for tag in sorted(by_tag):
        out.append(f"\n## {tag}\n")
        for path, method, operation in sorted(by_tag[tag]):
            out.append("\n".join(_route(path, method, operation, examples)) + "\n")
    return "\n".join(out).rstrip() + "\n"


def _error_codes(document: dict[str, Any]) -> list[tuple[int, str]]:
    """(status, code) pairs from the envelope's code description ("CODE (404); ...")."""
    for response in document["components"].get("responses", {}).values():
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        code = schema.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
        if "description" in code:
            pairs = []
            for item in code["description"].removeprefix("Stable error code: ").split("; "):
                name, _, status = item.partition(" (")
                pairs.append((int(status.rstrip(")")), name))
            return sorted(pairs)
    return []


def main() -> int:
    DOC_FILE.write_text(render())
    print(f"wrote {DOC_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
