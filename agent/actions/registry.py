"""The one operation registry (STYLE.md practice 1).

An ``Operation`` declares everything about one thing the agent does: its request model (path,
query or body fields, discriminated on ``type`` where it is also an action), the handler that
runs it against the services, its REST method and path, its answer (model and media type), the
error statuses it documents and the capability it needs. The HTTP routes, ``/actions``,
``/batch``, the capability check, the metrics and the OpenAPI document are all generated from
``REGISTRY``; nothing is declared twice.

Modules that define operations call ``REGISTRY.add(...)`` at import time; ``load_all()`` imports
them all. The server imports them lazily instead: its routes come from the generated manifest
(``agent.actions.manifest``: each operation's module, route and publicity), and ``find`` imports
an operation's module on the first request that needs it, so an idle agent carries no models or
handlers. Whatever reads the whole registry (iterating it, ``actions``, an unknown type) loads all. Handlers never see HTTP: they take ``(services, request)`` (uploads also a ``ByteBody``)
and return a ``Result`` model or one of ``agent.actions.outputs``, and raise ``agent.errors``.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from agent.actions import manifest
from agent.actions.capabilities import Capability, Conditional, require
from agent.actions.context import add_page_context, wants_context
from agent.actions.leniency import nearest_name, normalize
from agent.actions.outputs import ByteBody, Media, Output
from agent.config import Config
from agent.errors import InvalidArgument

if TYPE_CHECKING:
    from agent.services import Services

RequestT = TypeVar("RequestT", bound=BaseModel)
Handler = Callable[["Services", Any], Awaitable[Output]]
UploadHandler = Callable[["Services", Any, ByteBody], Awaitable[Output]]
RequestModel = type[BaseModel]
ResultModel = type[BaseModel] | None
Method = Literal["GET", "POST", "PUT", "DELETE"]
PATH_PARAM = re.compile(r"{(\w+)}")
KiB = 1024
MiB = 1024 * KiB
# A JSON body's limit stays above the largest body its schema accepts, so a 413 only ever refuses
# a body that would be invalid anyway (except under a max_body_bytes set lower than that).
DEFAULT_BODY_LIMIT = 256 * KiB  # coordinates, keys, window ops, paths; a launch command line
BULK_BODY = -1  # the operation carries bulk data: its limit is the agent's max_body_bytes
# What every operation may answer unless it declares its own list: a bad request, no token, the
# desktop not answering (404 is added for operations with path parameters).
DEFAULT_ERRORS = (400, 401, 503)

# Modules whose import registers operations; each is a service family.
ACTION_MODULES: tuple[str, ...] = (
    "agent.actions.input",
    "agent.actions.screen",
    "agent.actions.windows",
    "agent.actions.clipboard",
    "agent.actions.session",
    "agent.actions.exec",
    "agent.actions.processes",
    "agent.actions.files",
    "agent.actions.accessibility",
    "agent.actions.service",
    "agent.actions.waiting",
    "agent.actions.browser",
    "agent.actions.screencast",
    "agent.actions.viewer",
    "agent.actions.peers",  # after the modules whose actions it names
    "agent.actions.compat_anthropic",  # the vendors' vocabularies, over the operations above
    "agent.actions.compat_openai",
    "agent.actions.live",
)


@dataclass(frozen=True, slots=True)
class Operation:
    type: str  # the operationId, the /actions type and the metrics label
    model: RequestModel  # path, query (GET, DELETE, PUT) or JSON body (POST) fields
    handler: Handler | UploadHandler
    summary: str
    route: str | None = None  # REST path, e.g. /desktop/window/{window_id}/size; None: /actions only
    method: Method = "POST"
    result: ResultModel = None  # the answer's model (JSON media); None for images, bytes, text
    media: Media = "json"
    uses_input: bool = False  # holds the input lock, so batches are not interleaved
    tag: str = "desktop"
    # Long work nobody may want any more: cancelled when the HTTP client goes away (commands, streams).
    cancel_on_disconnect: bool = False
    capability: Capability | None = None  # switched off with its option: refused before anything runs
    conditional: Conditional | None = None  # a capability only some requests need
    actions: bool = True  # also reachable from /actions and /batch (JSON or image answers only)
    body: Literal["json", "bytes"] = "json"  # "bytes": the handler reads a ByteBody (uploads)
    errors: tuple[int, ...] | None = None  # documented error statuses; None: DEFAULT_ERRORS (+404)
    replies: Mapping[int, str] = field(default_factory=dict)  # other success statuses, same content
    description: str | None = None
    ok: str = "Done"  # what the 200 answer is
    public: bool = False  # served without the bearer token (/health)
    headers: Mapping[str, str] = field(default_factory=dict)  # request header -> model field
    max_body: int = DEFAULT_BODY_LIMIT  # JSON body bytes before 413; BULK_BODY: max_body_bytes
    # Also reads the coordinate space from Anthropic's display_width_px/display_height_px query
    # parameters (the compat routes); every operation reads the X-Coordinate-Space header.
    space_query: bool = False
    # GET routes a browser opens without headers (WebSocket, EventSource): a single-use ticket
    # from POST /ws/ticket in ?ticket= stands in for the bearer token (agent.live.tickets).
    ticket: bool = False

    @property
    def path_params(self) -> list[str]:
        return PATH_PARAM.findall(self.route or "")

    @property
    def from_query(self) -> bool:
        """Whether the request's fields come from the query string (else a JSON body)."""
        return self.method != "POST"

    @property
    def error_statuses(self) -> tuple[int, ...]:
        statuses = list(self.errors if self.errors is not None else DEFAULT_ERRORS)
        if self.errors is None and self.path_params:
            statuses.append(404)
        if self.capability is not None or self.conditional is not None:
            statuses.append(403)
        if self.method in ("POST", "PUT"):
            statuses.append(415)  # agent.api.guard: a body of another media type (cross-site forms)
        return tuple(dict.fromkeys(statuses))

    def authorize(self, config: Config, request: BaseModel | None = None) -> None:
        """Refuse the operation if a capability it needs is off; ``request`` adds conditional ones."""
        if self.capability is not None:
            require((self.capability,), config, self.type)
        if request is not None and self.conditional is not None and self.conditional.applies(request):
            require((self.conditional.capability,), config, f"{self.type} ({self.conditional.when})")

    async def run(self, services: Services, request: BaseModel, body: ByteBody | None = None) -> Output:
        """Run the handler; ``include_context: true`` adds the browser's ``page_context``."""
        arguments: tuple[Any, ...] = (services, request) if body is None else (services, request, body)
        output = await self.handler(*arguments)
        if wants_context(request):
            output = await add_page_context(services, request, output)
        return output

    def prepare(self, config: Config, data: object, *, from_query: bool = False) -> BaseModel:
        """Check the capabilities, validate the request, check the ones the request needs."""
        self.authorize(config)
        request = validate(self.model, data, from_query=from_query)
        self.authorize(config, request)
        return request


class Registry:
    def __init__(self, modules: Mapping[str, str] | None = None) -> None:
        """``modules``: operation type -> the module that declares it (the manifest), for
        operations not declared yet: the registry imports that module when asked for one."""
        self._operations: dict[str, Operation] = {}
        self._declared_in: dict[str, str] = {}  # type -> the module that declared it
        self._adapter: TypeAdapter[Any] | None = None
        self._modules = dict(modules or {})
        self._complete = modules is None  # whether every operation module is imported

    def add(
        self,
        type: str,
        model: type[RequestT],
        handler: Callable[[Services, RequestT], Awaitable[Output]]
        | Callable[[Services, RequestT, ByteBody], Awaitable[Output]],
        *,
        summary: str,
        **declaration: Any,
    ) -> None:
        if type in self._operations:
            raise ValueError(f"operation {type!r} declared twice")
        if declaration.get("uses_input"):  # every input action can ask for a screenshot after it
            from agent.actions.observe import with_screenshot_after

            declared, handler, declaration["result"] = with_screenshot_after(
                model, handler, declaration.get("result")
            )
        else:
            declared = model
        operation = Operation(type, declared, handler, summary, **declaration)
        if operation.actions:
            type_field = declared.model_fields.get("type")
            if type_field is None or type_field.default != type:
                raise ValueError(f"{model.__name__} needs a field type: Literal[{type!r}] = {type!r}")
            if operation.media not in ("json", "image") or operation.body != "json":
                raise ValueError(f"{type}: only JSON-in, JSON- or image-out operations can be actions")
        if operation.route is None and not operation.actions:
            raise ValueError(f"{type}: neither a route nor an action")
        self._operations[type] = operation
        self._declared_in[type] = sys._getframe(1).f_globals.get("__name__", "")
        self._adapter = None

    def order_by_module(self, modules: tuple[str, ...]) -> None:
        """Operations in ``modules``' order, each module's in declaration order: the document, the
        action union and every client generated from them do not depend on who imported what first."""
        rank = {name: index for index, name in enumerate(modules)}
        ordered = sorted(self._operations, key=lambda type: rank.get(self._declared_in[type], len(rank)))
        if ordered != list(self._operations):
            self._operations = {type: self._operations[type] for type in ordered}
            self._adapter = None

    def declared_in(self, type: str) -> str:
        """The module whose import declared the operation ``type``."""
        return self._declared_in[type]

    def __iter__(self) -> Iterator[Operation]:
        if not self._complete:
            self.load_all()
        return iter(self._operations.values())

    def __len__(self) -> int:
        if not self._complete:
            self.load_all()
        return len(self._operations)

    def load_all(self) -> None:
        """Import every operation module (idempotent), then put the operations in their order."""
        self._complete = True  # first: a module's import may look an operation up
        for name in ACTION_MODULES:
            importlib.import_module(name)
        self.order_by_module(ACTION_MODULES)

    def find(self, type: str) -> Operation | None:
        """The operation ``type``, its module imported first if it is not yet (None if unknown)."""
        operation = self._operations.get(type)
        if operation is None and not self._complete:
            module = self._modules.get(type)
            if module is not None:
                importlib.import_module(module)
                operation = self._operations.get(type)
        return operation

    def is_loaded(self, type: str) -> bool:
        """Whether looking ``type`` up (``find``, ``get``) imports nothing."""
        return self._complete or type in self._operations

    def load(self, type: str) -> None:
        """Import what looking ``type`` up needs: its module, or every module for a type the
        manifest does not name (its 400 lists the known ones)."""
        if self.find(type) is None and not self._complete:
            self.load_all()

    def is_declared(self, type: str) -> bool:
        return type in self._operations or type in self._modules

    def actions(self) -> list[Operation]:
        """The operations reachable from /actions and /batch."""
        return [operation for operation in self if operation.actions]

    def get(self, type: str) -> Operation:
        """The action ``type`` (for /actions and /batch)."""
        operation = self.find(type)
        if operation is None:
            known = ", ".join(sorted(op.type for op in self.actions()))
            raise InvalidArgument(f"unknown action type {type!r}", details={"known_types": known})
        return operation

    def action(self, type: str, config: Config) -> Operation:
        """The action ``type`` for /actions and /batch: refused like its route when a capability
        it needs is off, then a 400 if it is REST only (streams, raw bodies, raw answers)."""
        operation = self.get(type)
        operation.authorize(config)
        if not operation.actions:
            raise InvalidArgument(
                f"{type!r} is REST only ({_rest_only_reason(operation)}): call {operation.method} {operation.route}",
                details={"route": operation.route, "method": operation.method},
            )
        return operation

    def union(self) -> Any:
        """The tagged union of every action's request model (for the OpenAPI document)."""
        models = tuple(action.model for action in self.actions())
        return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007

    def parse(self, payload: object, config: Config) -> tuple[Operation, BaseModel]:
        """Check and validate one tagged action (from /actions or /batch)."""
        if not isinstance(payload, dict):
            raise InvalidArgument("an action must be a JSON object with a 'type' field")
        kind = payload.get("type")
        if not isinstance(kind, str):
            raise InvalidArgument("the action has no 'type' field (a string such as 'click')")
        action = self.action(kind, config)
        return action, action.prepare(config, payload)

    def alias(self, alias: str, target: str, model: RequestModel) -> None:
        """Declare ``alias`` as another name of the action ``target`` (a peer's name for it): its
        own action type, with ``model`` (the target's model tagged ``alias``), so /actions, /batch
        and the OpenAPI document all know it; it has no REST route of its own."""
        operation = self._operations[target]
        self.add(
            alias,
            model,
            operation.handler,
            summary=f"{operation.summary} (another name of `{target}`)",
            **{
                name: getattr(operation, name)
                for name in ("result", "media", "uses_input", "tag", "capability", "conditional", "errors")
            },
            max_body=operation.max_body,
        )
        self._declared_in[alias] = sys._getframe(1).f_globals.get("__name__", "")  # alias's caller


def _rest_only_reason(operation: Operation) -> str:
    if operation.body == "bytes":
        return "its body is raw bytes"
    return {
        "events": "it answers with a stream of events",
        "bytes": "it answers with raw bytes",
        "text": "it answers with plain text",
        "document": "it answers with the OpenAPI document",
        "frames": "it answers with a stream of frames",
        "websocket": "it is a WebSocket",
        "html": "it answers with a web page",
    }.get(operation.media, f"it answers with {operation.media}")


def validate(model: type[RequestT], data: object, *, from_query: bool = False) -> RequestT:
    """Validate ``data`` against ``model``; errors become one 400 naming every bad field.

    The leniency policy (``agent.actions.leniency``) applies first. JSON bodies are then validated
    strictly, as JSON (``false`` is not the integer 0, "5" is not 5); query strings, where
    everything is a string, are converted (booleans and lists beforehand, by ``agent.api.query``).
    """
    data = normalize(model, data, from_query=from_query)
    try:
        if from_query:
            return model.model_validate(data)
        return model.model_validate_json(json.dumps(data, allow_nan=False), strict=True)
    except ValidationError as exc:
        raise invalid_argument(exc, model) from None
    except ValueError as exc:  # NaN or an infinity in a JSON body (json.loads lets them through)
        raise InvalidArgument(f"the body has a number JSON does not allow ({exc})") from None


def invalid_argument(exc: ValidationError, model: type[BaseModel] | None = None) -> InvalidArgument:
    problems: list[dict[str, str]] = []
    for error in exc.errors(include_url=False, include_context=False):
        location = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"]
        suggestion = None
        if error["type"] == "extra_forbidden":
            message = "unknown field"
            if model is not None and len(error["loc"]) == 1:
                suggestion = nearest_name(model, str(error["loc"][0]))
                if suggestion is not None:
                    message += f"; did you mean {suggestion!r}?"
        elif error["type"] == "value_error":  # our own validators' words, without pydantic's prefix
            message = message.removeprefix("Value error, ")
        elif error["type"] != "missing" and "input" in error and not isinstance(error["input"], dict):
            # A value is echoed; a whole object (the body, with fields the SDK filled in) is not.
            shown = repr(error["input"])
            message += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        problem = {"field": location, "problem": message}
        if suggestion is not None:
            problem["did_you_mean"] = suggestion
        problems.append(problem)
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
    return InvalidArgument(summary, details={"errors": problems})


REGISTRY = Registry(manifest.MODULES)


def load_all() -> Registry:
    """Import every operation module (idempotent) and return the filled registry."""
    REGISTRY.load_all()
    return REGISTRY
