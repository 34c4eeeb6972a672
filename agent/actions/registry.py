"""The one action registry (STYLE.md practice 1).

An ``Action`` ties together a request model (discriminated on ``type``), a handler that runs it
against the services, its REST route and its documented result. The HTTP layer, ``/actions``,
``/batch`` and the OpenAPI document are all generated from ``REGISTRY``; nothing is declared twice.

Modules that define actions call ``REGISTRY.add(...)`` at import time; ``load_all()`` imports
them. Handlers never see HTTP: they take ``(services, request)`` and return a ``Result`` model or
an ``ImageResult``, and raise ``agent.errors`` exceptions.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from agent.errors import InvalidArgument
from agent.models.base import ImageResult, Result

if TYPE_CHECKING:
    from agent.services import Services

ActionOutput = Result | ImageResult
RequestT = TypeVar("RequestT", bound=BaseModel)
Handler = Callable[["Services", Any], Awaitable[ActionOutput]]
RequestModel = type[BaseModel]
ResultModel = type[Result] | None

# Modules whose import registers actions; each is a service family.
ACTION_MODULES: tuple[str, ...] = (
    "agent.actions.input",
    "agent.actions.screen",
    "agent.actions.windows",
    "agent.actions.clipboard",
    "agent.actions.session",
    "agent.actions.exec",
    "agent.actions.accessibility",
)


@dataclass(frozen=True, slots=True)
class Action:
    type: str
    model: RequestModel
    handler: Handler
    summary: str
    route: str | None = None  # REST path, e.g. /desktop/double-click
    method: Literal["GET", "POST"] = "POST"
    result: ResultModel = None  # None: the answer is an image
    uses_input: bool = False  # holds the input lock, so batches are not interleaved
    tag: str = "desktop"
    # Long work nobody may want any more: cancelled when the HTTP client goes away (commands).
    cancel_on_disconnect: bool = False


class Registry:
    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}
        self._adapter: TypeAdapter[Any] | None = None

    def add(
        self,
        type: str,
        model: type[RequestT],
        handler: Callable[[Services, RequestT], Awaitable[ActionOutput]],
        *,
        summary: str,
        route: str | None = None,
        method: Literal["GET", "POST"] = "POST",
        result: type[Result] | None = None,
        uses_input: bool = False,
        tag: str = "desktop",
        cancel_on_disconnect: bool = False,
    ) -> None:
        if type in self._actions:
            raise ValueError(f"action type {type!r} declared twice")
        type_field = model.model_fields.get("type")
        if type_field is None or type_field.default != type:
            raise ValueError(f"{model.__name__} needs a field type: Literal[{type!r}] = {type!r}")
        self._actions[type] = Action(
            type, model, handler, summary, route, method, result, uses_input, tag, cancel_on_disconnect
        )
        self._adapter = None

    def __iter__(self) -> Iterator[Action]:
        return iter(self._actions.values())

    def __len__(self) -> int:
        return len(self._actions)

    def get(self, type: str) -> Action:
        try:
            return self._actions[type]
        except KeyError:
            known = ", ".join(sorted(self._actions))
            raise InvalidArgument(f"unknown action type {type!r}", details={"known_types": known}) from None

    def union(self) -> Any:
        """The tagged union of every request model (for the OpenAPI document)."""
        models = tuple(action.model for action in self)
        return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007

    def parse(self, payload: object) -> tuple[Action, BaseModel]:
        """Validate one tagged action (from /actions or /batch)."""
        if not isinstance(payload, dict):
            raise InvalidArgument("an action must be a JSON object with a 'type' field")
        kind = payload.get("type")
        if not isinstance(kind, str):
            raise InvalidArgument("the action has no 'type' field (a string such as 'click')")
        action = self.get(ACTION_TYPE_ALIASES.get(kind, kind))
        body = dict(payload, type=action.type)
        return action, validate(action.model, body)


# Names other products of this kind use for the same action type (seed 002).
ACTION_TYPE_ALIASES: dict[str, str] = {
    "keypress": "key",
    "key_press": "key",
    "mouse_move": "move",
    "left_click": "click",
    "cursor": "cursor_position",
    "get_cursor_position": "cursor_position",
}


def validate(model: type[RequestT], data: object, *, from_query: bool = False) -> RequestT:
    """Validate ``data`` against ``model``; errors become one 400 naming every bad field.

    JSON bodies are validated strictly, as JSON (``false`` is not the integer 0, "5" is not 5);
    query strings, where everything is a string, are converted.
    """
    try:
        if from_query:
            return model.model_validate(data)
        return model.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        raise invalid_argument(exc) from None


def invalid_argument(exc: ValidationError) -> InvalidArgument:
    problems = []
    for error in exc.errors(include_url=False, include_context=False):
        location = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] != "missing" and "input" in error:
            shown = repr(error["input"])
            message += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
        problems.append({"field": location, "problem": message})
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
    return InvalidArgument(summary, details={"errors": problems})


REGISTRY = Registry()


def load_all() -> Registry:
    """Import every action module (idempotent) and return the filled registry."""
    for name in ACTION_MODULES:
        importlib.import_module(name)
    return REGISTRY
