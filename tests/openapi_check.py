"""Both directions against the served OpenAPI document: what the agent accepted validates as a
request, and what it answered validates as a response of that operation."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema_rs

ERROR_HEADER = "X-Computer-Agent-Error"


@dataclass
class Recorder:
    """httpx event hook: keeps every exchange (the body read) for ``check``."""

    exchanges: list[httpx.Response] = field(default_factory=list)

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.exchanges.append(response)


class Document:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.paths = [
            (re.compile("^" + re.sub(r"{\w+}", "[^/]+", path) + "$"), item)
            for path, item in document["paths"].items()
        ]

    def _validator(self, schema: dict[str, Any]) -> Any:
        return jsonschema_rs.Draft202012Validator({**schema, "components": self.document["components"]})

    def _resolve(self, item: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in item and item["$ref"].startswith("#/components/responses/"):
            item = self.document["components"]["responses"][item["$ref"].rsplit("/", 1)[1]]
        return item

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        for pattern, item in self.paths:
            if pattern.match(path):
                found: dict[str, Any] | None = item.get(method)
                return found
        return None

    def check(self, response: httpx.Response) -> None:
        request = response.request
        method = request.method.lower()
        where = f"{request.method} {request.url.path}?{request.url.query.decode()}"
        status = response.status_code
        if status >= 400:
            assert response.headers.get(ERROR_HEADER), (where, status, "error without its header")
            if method != "head":
                error = response.json()
                self._validator({"$ref": "#/components/schemas/Error"}).validate(error)
                assert response.headers[ERROR_HEADER] == error["error"]["code"], where
        operation = self.operation("get" if method == "head" else method, request.url.path)
        if operation is None:
            assert status in (404, 405), (where, status, "an undocumented operation answered")
            return
        responses = operation["responses"]
        declared = responses.get(str(status)) or responses.get("default")
        assert declared is not None, (where, status, "status not in the document")
        declared = self._resolve(declared)
        if status < 400:
            self._check_request(operation, request, where)
        content_type = response.headers.get("Content-Type", "").split(";")[0]
        if method == "head":
            assert response.content == b"", where
            return
        if content_type == "application/json":
            schema = declared.get("content", {}).get("application/json", {}).get("schema")
            assert schema is not None, (where, status, "JSON answer where the document has none")
            errors = [str(e) for e in self._validator(schema).iter_errors(response.json())]
            assert not errors, (where, "answer", errors)

    def _check_request(self, operation: dict[str, Any], request: httpx.Request, where: str) -> None:
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query" or parameter["name"] not in request.url.params:
                continue
            raw = request.url.params[parameter["name"]]
            validator = self._validator(parameter["schema"])
            candidates: list[Any] = [raw]
            with contextlib.suppress(ValueError):
                candidates.insert(0, json.loads(raw))
            assert any(validator.is_valid(value) for value in candidates), (where, parameter["name"], raw)
        body = operation.get("requestBody")
        if body is not None and request.content:
            schema = body["content"].get("application/json", {}).get("schema")
            if schema is not None:
                errors = [str(e) for e in self._validator(schema).iter_errors(json.loads(request.content))]
                assert not errors, (where, "request", errors)
