"""The leniency policy: what the agent accepts beyond the letter of its schemas, in one place.

Real clients send cache-busting query parameters, floats for pixels (they scale a model's
coordinates), ``null`` for "not given", peers' bookkeeping fields and enum values in any case.
``normalize`` turns such a request into the canonical one before the request model validates it
(strictly, for JSON bodies), so every channel (REST, /actions, /batch) gets the same policy:

- unknown query parameters are ignored (logged at debug);
- a number with an integral value is accepted where an integer is expected (500.0 is 500);
  a fractional value is rounded only for screen coordinates and extents (fields typed
  ``Coordinate``: nearest pixel, halves up), and is a 400 for every other integer;
- ``null`` means absent: an optional field given ``null`` takes its default, and an unknown
  field given ``null`` is dropped;
- enum values match in any case ("LEFT" is "left");
- the fields seed 002's clients send on every action are declared on every request model:
  ``request_id`` (accepted and ignored), ``include_context`` (adds the browser's ``page_context``,
  ``agent.actions.context``) and ``tab_id`` (the browser tab; ignored by other operations).

Strictness stays where it protects: any other unknown body field is a 400 naming it and the
nearest valid name; booleans are not numbers; "5" is not 5 in a JSON body; NaN and infinities
are not numbers.
"""

from __future__ import annotations

import logging
import math
import types
from collections.abc import Iterable
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, RootModel
from pydantic.fields import FieldInfo

from agent.models.base import is_coordinate

LOG = logging.getLogger(__name__)


class Shape:
    """What a field's annotation admits, as far as the policy cares."""

    def __init__(self, annotation: Any, metadata: Iterable[Any]) -> None:
        self.integer = False
        self.number = False  # float: an integral value needs no conversion
        self.coordinate = is_coordinate(list(metadata))
        self.choices: list[str] = []
        self.models: list[type[BaseModel]] = []
        self._walk(annotation)

    def _walk(self, annotation: Any) -> None:
        origin = get_origin(annotation)
        if origin is Union or origin is types.UnionType:
            for arg in get_args(annotation):
                self._walk(arg)
        elif origin is Literal:
            self.choices += [value for value in get_args(annotation) if isinstance(value, str)]
        elif hasattr(annotation, "__metadata__"):  # Annotated[int, ScreenPixels()]
            self.coordinate = self.coordinate or is_coordinate(list(annotation.__metadata__))
            self._walk(get_args(annotation)[0])
        elif annotation is int:
            self.integer = True
        elif annotation is float:
            self.number = True
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            self.models.append(annotation)


def field_names(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """Every name a body may use for a field: its own and its validation aliases."""
    names: dict[str, FieldInfo] = {}
    for name, info in model.model_fields.items():
        names[name] = info
        alias = info.validation_alias
        if isinstance(alias, str):
            names[alias] = info
        elif isinstance(alias, AliasChoices):
            names.update({choice: info for choice in alias.choices if isinstance(choice, str)})
    return names


def nearest_name(model: type[BaseModel], unknown: str) -> str | None:
    """The valid field name an unknown one most likely misspells, if any is close."""
    import difflib  # only a refused request needs it

    matches = difflib.get_close_matches(unknown, list(field_names(model)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def normalize(model: type[BaseModel], data: object, *, from_query: bool = False) -> object:
    """``data`` with the policy applied for ``model``; what it cannot fix is left for the model
    to refuse (so the 400 names it)."""
    if not isinstance(data, dict):
        return data
    root = model.model_fields.get("root") if issubclass(model, RootModel) else None
    if root is not None:  # a tagged union (a peer's vocabulary): the policy of the member named
        member = _member(Shape(root.annotation, root.metadata).models, data)
        return data if member is None else normalize(member, data, from_query=from_query)
    fields = field_names(model)
    canonical: dict[str, Any] = {}
    for key, value in data.items():
        info = fields.get(key)
        if info is None:
            if from_query:
                LOG.debug("ignoring unknown query parameter %r for %s", key, model.__name__)
                continue
            if value is None:
                continue  # null means absent
            canonical[key] = value  # the model refuses it, naming the nearest valid name
            continue
        if value is None and not info.is_required():
            continue
        canonical[key] = _coerce(Shape(info.annotation, info.metadata), value, from_query=from_query)
    return canonical


def _coerce(shape: Shape, value: Any, *, from_query: bool) -> Any:
    if isinstance(value, str) and shape.choices:
        folded = value.casefold()
        for choice in shape.choices:
            if choice.casefold() == folded:
                return choice
    if from_query and isinstance(value, str) and shape.integer and not shape.number:
        number = _query_number(value)
        if number is not None:
            integral = _integral(shape, number)
            return value if integral is None else str(integral)
        return value
    if isinstance(value, float) and shape.integer and not shape.number:
        integral = _integral(shape, value)
        return value if integral is None else integral
    if isinstance(value, dict) and shape.models:
        member = _member(shape.models, value)
        return value if member is None else normalize(member, value)
    return value


def _member(models: list[type[BaseModel]], data: dict[str, Any]) -> type[BaseModel] | None:
    """The model ``data`` is meant for: the only one, or the one whose ``type`` tag it carries."""
    if len(models) == 1:
        return models[0]
    for model in models:
        tag = model.model_fields.get("type")
        if tag is not None and tag.default == data.get("type"):
            return model
    return None


def _query_number(raw: str) -> float | None:
    text = raw.strip()
    if not any(mark in text for mark in ".eE"):
        return None  # an integer (or not a number): the model converts or refuses it
    try:
        return float(text)
    except ValueError:
        return None


def _integral(shape: Shape, value: float) -> int | None:
    """The integer ``value`` stands for, or None (not finite, or fractional off a coordinate)."""
    if not math.isfinite(value):
        return None
    if value.is_integer():
        return int(value)
    if shape.coordinate:
        return math.floor(value + 0.5)
    return None


POLICY = (
    "Leniency: unknown query parameters are ignored; a number with an integral value is accepted "
    "where an integer is expected (500.0); fractional screen coordinates and extents (fields marked "
    "`x-rounded`) are rounded to the nearest pixel, halves up, and a fraction elsewhere is a 400; "
    "`null` means absent (an optional field takes its default, an unknown field given null is "
    "dropped); enum values match in any case; `request_id` (sent by peer products' clients) is accepted and "
    "ignored, `include_context: true` adds the browser's `page_context` to a JSON result and `tab_id` "
    "names a browser tab (ignored by non-browser operations). Any other unknown body field is a 400 naming "
    "it and, when one is close, the valid name it misspells (`details.errors[].did_you_mean`)."
)


def document(schema: dict[str, Any]) -> None:
    """Make a request model's JSON Schema say what ``normalize`` accepts (in place): optional
    fields also take null, unknown fields only null, enums any case."""
    if schema.get("additionalProperties") is not False:
        return  # not a request model (results are not validated leniently)
    schema["additionalProperties"] = {"type": "null"}
    required = set(schema.get("required", []))
    for rule in schema.get("allOf", []):  # a field required under any of its names (x1 or start_x)
        required.update(name for option in rule.get("anyOf", []) for name in option.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if name == "type":
            continue  # the action's tag: exact, as the discriminator says
        _any_case(prop)
        if name not in required:
            _nullable(prop)


def _nullable(prop: dict[str, Any]) -> None:
    if any(option.get("type") == "null" for option in prop.get("anyOf", [])) or prop.get("type") == "null":
        return
    kept: dict[str, Any] = {key: prop.pop(key) for key in ("title", "description", "default") if key in prop}
    inner = dict(prop)
    prop.clear()
    prop.update(kept, anyOf=[inner, {"type": "null"}])


def _any_case(prop: dict[str, Any]) -> None:
    for option in prop.get("anyOf", []):
        _any_case(option)
    values = prop.get("enum")
    if not values or not all(isinstance(value, str) for value in values):
        return
    letters = "|".join(
        "".join(f"[{c.lower()}{c.upper()}]" if c.lower() != c.upper() else _escape(c) for c in value)
        for value in values
    )
    prop.pop("enum")
    prop.pop("type", None)
    prop["anyOf"] = [
        {"type": "string", "enum": values},
        {"type": "string", "pattern": f"^(?:{letters})$", "description": "The same values, in any case"},
    ]


def _escape(char: str) -> str:
    return "\\" + char if char in r".^$*+?()[]{}|\-/" else char
