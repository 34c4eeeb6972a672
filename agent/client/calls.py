"""What the sync and async clients share: how an operation becomes an HTTP request, and how an
answer becomes a result model, a screenshot or a typed exception. No I/O here.

The generated methods (``agent.client._operations``) hand each call an ``Operation`` spec copied
from the registry (method, route, path parameters, header fields) and the caller's fields; the
request is not validated here: the server's leniency policy and validation are the one place
that decides, and its 400 comes back as ``InvalidArgument`` naming every bad field.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

import orjson
from pydantic import BaseModel

from agent.client import errors as _errors

if TYPE_CHECKING:
    from PIL.Image import Image

ResultT = TypeVar("ResultT", bound=BaseModel)
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Spec:
    """One operation as the registry declares it: enough to build its HTTP request."""

    type: str
    method: str
    route: str | None  # None: reachable through POST /actions only
    path_params: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # (request header, field)


@dataclass(slots=True)
class Prepared:
    """An HTTP request ready to send: method, path with its query, headers, JSON body."""

    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    via_actions: bool = False


@dataclass(frozen=True, slots=True)
class Screenshot:
    """An encoded image and its sizes (the screen's may differ when it was scaled)."""

    data: bytes
    format: str
    width: int
    height: int
    screen_width: int | None = None
    screen_height: int | None = None

    def to_pil(self) -> Image:
        """The image as a PIL image (Pillow is a dependency of the agent already)."""
        import io

        from PIL import Image as PILImage

        image = PILImage.open(io.BytesIO(self.data))
        image.load()
        return image

    def save(self, path: str) -> None:
        with open(path, "wb") as file:
            file.write(self.data)


def _default(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(data: object) -> bytes:
    return orjson.dumps(data, default=_default)


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def prepare(spec: Spec, fields: Mapping[str, Any]) -> Prepared:
    """The request of ``spec`` with ``fields`` (None values are left out: the server's default)."""
    data = {name: value for name, value in fields.items() if value is not None}
    # request_id is also the X-Request-Id the agent logs and puts in its answers (and errors).
    correlation = {"X-Request-Id": str(data["request_id"])} if "request_id" in data else {}
    if spec.route is None:
        headers = {"Content-Type": JSON, **correlation}
        return Prepared("POST", "/actions", headers, dumps({"type": spec.type, **data}), True)
    path = spec.route
    for name in spec.path_params:
        path = path.replace("{" + name + "}", quote(str(data.pop(name)), safe=""))
    headers = {header: str(data.pop(name)) for header, name in spec.headers if name in data} | correlation
    if spec.method == "POST":
        headers["Content-Type"] = JSON
        return Prepared("POST", path, headers, dumps(data))
    pairs: list[tuple[str, str]] = []
    for name, value in data.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((name, _query_value(item)) for item in values)
    return Prepared(spec.method, f"{path}?{urlencode(pairs)}" if pairs else path, headers)


_SERVER_MODELS: dict[str, type[BaseModel]] = {}


def server_model(operation: str, base: type[ResultT]) -> type[ResultT]:
    """The result model the registry declares for ``operation``, a subclass of ``base`` made at
    run time (an answer with ``screenshot`` when ``screenshot_after`` is given)."""
    model = _SERVER_MODELS.get(operation)
    if model is None:
        from agent.actions.registry import load_all

        declared = load_all().get(operation).result
        model = _SERVER_MODELS[operation] = declared if declared is not None else base
    if not issubclass(model, base):
        raise TypeError(f"{operation}: {model.__name__} is not a {base.__name__}")
    return model


def raise_for_status(status: int, body: bytes, headers: Mapping[str, str]) -> None:
    """Raise the typed exception of an error answer (the envelope's code picks the class)."""
    if status < 400:
        return
    error: dict[str, Any] = {}
    request_id = headers.get("X-Request-Id")
    try:
        envelope = orjson.loads(body)
        if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
            error = envelope["error"]
            request_id = envelope.get("request_id") or request_id
    except orjson.JSONDecodeError:
        pass
    code = str(error.get("code") or headers.get("X-Computer-Agent-Error") or f"HTTP_{status}")
    message = str(error.get("message") or body[:500].decode("utf-8", "replace") or f"HTTP {status}")
    retry_after = headers.get("Retry-After")
    raise _errors.error_class(code, status)(
        message,
        code=code,
        status=status,
        details=error.get("details") or {},
        request_id=request_id,
        retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
    )


def json_result(prepared: Prepared, body: bytes, model: type[ResultT]) -> ResultT:
    """The answer as its result model (from /actions: its ``result`` object)."""
    data = orjson.loads(body)
    answer = data["result"] if prepared.via_actions else data
    if isinstance(answer, dict) and "page_context" in answer and "page_context" not in model.model_fields:
        model = with_page_context(model)  # include_context=True: the model gains the field
    return model.model_validate(answer, by_alias=True, by_name=True)


def with_page_context(model: type[ResultT]) -> type[ResultT]:
    """``model`` with the ``page_context`` field (``include_context``), as the server makes it."""
    from agent.actions.context import _with_context

    extended: type[ResultT] = _with_context(model)  # type: ignore[assignment]
    return extended


def parse(model: type[ResultT], body: bytes | str) -> ResultT:
    """A server answer as its model. The models' validation aliases say where the server reads
    each value from its own objects (``role_name``, ``extents.x``); an answer names fields as
    serialised, so they are matched by name as well as by alias."""
    return model.model_validate_json(body, by_alias=True, by_name=True)


def event(model: type[BaseModel] | None, line: bytes) -> Any:
    """One NDJSON event: its model (a tagged union's member), or the JSON object without one."""
    if model is None:
        return orjson.loads(line)
    parsed = parse(model, line)
    return getattr(parsed, "root", parsed)


def screenshot(prepared: Prepared, body: bytes, headers: Mapping[str, str]) -> Screenshot:
    """An image answer: raw bytes with X-Image-* headers, or base64 JSON (``base64=true``, /actions)."""
    content_type = headers.get("Content-Type", "")
    if prepared.via_actions or content_type.startswith(JSON):
        data = orjson.loads(body)
        image = data["result"] if prepared.via_actions else data
        return Screenshot(
            base64.b64decode(image["image"]), image["format"], int(image["width"]), int(image["height"])
        )

    def size(name: str) -> int | None:
        value = headers.get(name)
        return int(value) if value is not None else None

    return Screenshot(
        body,
        content_type.removeprefix("image/").split(";")[0],
        size("X-Image-Width") or 0,
        size("X-Image-Height") or 0,
        size("X-Screen-Width"),
        size("X-Screen-Height"),
    )


# 503s that retrying would change the meaning of, whatever the operation: the browser was gone
# and comes back empty (its tab ids mean nothing any more), so a repeat would answer about another
# page. Reported once, as the server's docs promise.
NEVER_RETRIED = frozenset({"BROWSER_CLOSED"})
# Requests safe to send twice: reads. An action (POST, PUT, DELETE) that met a 503 may have run
# in part (a display lost in the middle of typing), and the agent does not say that nothing ran.
SAFE_METHODS = frozenset({"GET", "HEAD"})


def retryable(method: str, code: str) -> bool:
    """Whether a 503 of ``code`` to a ``method`` request may be sent again: only a read, and
    never one whose code says the state it read is gone (BROWSER_CLOSED)."""
    return method in SAFE_METHODS and code not in NEVER_RETRIED


def retry_delay(attempt: int, retry_after: float | None, max_delay: float) -> float:
    """How long to wait before retry ``attempt`` (1-based) of a 503: the server's Retry-After,
    else exponential backoff from 0.25 s, never more than ``max_delay``."""
    if retry_after is not None:
        return min(retry_after, max_delay)
    backoff: float = 0.25 * 2 ** (attempt - 1)
    return min(backoff, max_delay)
