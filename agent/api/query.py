"""The one reading of query strings (and request headers mapped to fields), for every route.

Booleans have one vocabulary: true/false, 1/0, yes/no, on/off (any case); anything else, an
empty value included, is a 400 naming the parameter. List fields take repeated keys or
comma-separated values. Everything else is a string that the model converts (integers...).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

from multidict import MultiMapping
from pydantic import BaseModel

from agent.errors import InvalidArgument

TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off"})


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise InvalidArgument(
        f"{name}: expected true or false (also 1/0, yes/no, on/off), got {raw!r}", details={"field": name}
    )


def _kinds(annotation: Any) -> set[Any]:
    """The types a field's annotation admits, unions and Optional unwrapped."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return {kind for arg in get_args(annotation) for kind in _kinds(arg)}
    return {origin or annotation}


def query_data(
    query: MultiMapping[str], model: type[BaseModel], from_headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The model's fields from a query string, and from headers (field -> value) the query lacks."""
    data: dict[str, Any] = {}
    for key in query:
        if key in data:
            continue
        values = query.getall(key)
        field = model.model_fields.get(key)
        kinds = _kinds(field.annotation) if field is not None else set()
        if list in kinds:
            data[key] = [part for value in values for part in value.split(",") if part]
        elif bool in kinds and len(values) == 1:
            data[key] = parse_bool(key, values[0])
        else:
            data[key] = values[0] if len(values) == 1 else values
    for name, value in (from_headers or {}).items():
        data.setdefault(name, value)
    return data
