"""The accessibility element as /desktop/accessibility/find answers it (also wait-for's ``element``).

A model of its own (not in ``agent.actions.accessibility``) so other answers can hold one without
importing the accessibility operations.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any

from pydantic import AliasPath, BaseModel, ConfigDict, Field, model_validator

from agent.a11y import roles
from agent.models.base import ALONG_X, ALONG_Y, AT_X, AT_Y

# Whether a field's value is unknown (None), to leave it out: a C callable, since serialising a
# tree of ten thousand nodes asks it five times a node.
_unknown = functools.partial(operator.is_, None)


def _never_null(schema: dict[str, Any]) -> None:
    """A field left out when unknown, never null: its schema says what it holds when present."""
    schema.pop("default", None)
    options = [option for option in schema.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options


def omitted(**kwargs: Any) -> Any:
    """A field that is omitted from the answer, not null, when its value is unknown."""
    extra = kwargs.pop("enum", None)

    def schema(out: dict[str, Any]) -> None:
        _never_null(out)
        if extra is not None:
            out["enum"] = extra

    return Field(default=None, exclude_if=_unknown, json_schema_extra=schema, **kwargs)


BOUNDS_HELP = (
    "Screen position in pixels (with y, width, height); omitted when the element has no known place "
    "on screen: not showing (a hidden page, a closed menu, a row scrolled out of its list), an "
    "application, or an element without the Component interface"
)


class Center(BaseModel):
    x: Annotated[int, AT_X]
    y: Annotated[int, AT_Y]

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value: object) -> object:
        """``ScreenRect.center`` is an (x, y) pair."""
        if isinstance(value, tuple):
            x, y = value
            return {"x": x, "y": y}
        return value


class FoundNode(BaseModel):
    # FoundNode.model_validate(node) reads the walk's Node: the validation aliases name where each
    # value sits on it (only the answer's schema is documented; a docstring would enter it).
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str = Field(validation_alias="role_name")
    aria_role: str | None = omitted(enum=list(roles.NODE_ARIA_NAMES))
    name: str
    states: list[str]
    x: Annotated[int | None, AT_X] = omitted(
        validation_alias=AliasPath("extents", "x"), description=BOUNDS_HELP
    )
    y: Annotated[int | None, AT_Y] = omitted(validation_alias=AliasPath("extents", "y"))
    width: Annotated[int | None, ALONG_X] = omitted(validation_alias=AliasPath("extents", "width"))
    height: Annotated[int | None, ALONG_Y] = omitted(validation_alias=AliasPath("extents", "height"))
    center: Center | None = omitted(
        validation_alias=AliasPath("extents", "center"),
        description="Where /desktop/click should aim; omitted (with x, y, width, height) if off screen",
    )
