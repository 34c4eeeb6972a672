"""Models of act-then-observe (``screenshot_after``) and of POST /desktop/wait-for."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from agent.models.accessibility import FoundNode
from agent.models.base import (
    ALONG_X,
    ALONG_Y,
    AT_X,
    AT_Y,
    MAX_HEIGHT,
    MAX_WIDTH,
    SCALE,
    Coordinate,
    ImageJSON,
    Request,
    Result,
)
from agent.models.windows import Window

# Settle defaults: long enough for a local app to answer a keystroke or a click and repaint
# (tens of ms), short next to the 1-2 s fixed sleeps agent loops use; a blinking caret (GTK:
# every 500-600 ms) leaves quiet gaps longer than this.
SETTLE_QUIET_MS = 250
SETTLE_MAX_WAIT_MS = 3000


class ScreenshotAfter(BaseModel):
    """Capture the screen once it has settled after the action (``{}``: the defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["png", "jpeg", "jpg", "webp"] = "png"
    quality: int = Field(default=75, ge=1, le=100, description="JPEG/WebP quality")
    scale: float | None = SCALE
    max_width: int | None = MAX_WIDTH
    max_height: int | None = MAX_HEIGHT
    cursor: bool = Field(default=False, description="Draw the pointer into the image")
    quiet_ms: int = Field(
        default=SETTLE_QUIET_MS,
        ge=0,
        le=10000,
        description="Settled means: no screen change (X DAMAGE) for this long after the action",
    )
    max_wait_ms: int = Field(
        default=SETTLE_MAX_WAIT_MS,
        ge=0,
        le=30000,
        description="Capture after this long even if the screen keeps changing (settled: false)",
    )


class SettledScreenshot(ImageJSON):
    """The screenshot taken after the action, and how the settling went."""

    settled: bool = Field(description="The screen was quiet for quiet_ms (false: max_wait_ms ran out)")
    waited_ms: float = Field(description="From the action's end to the capture")
    changes: int = Field(description="Screen changes seen from the action's start to the capture")


# -- wait-for ----------------------------------------------------------------------------------
Condition = Literal["screen_stable", "screen_changed", "window", "element", "text"]
WindowState = Literal["appears", "disappears", "focused"]

# The fields each condition takes besides condition, timeout, type and the common ones.
CONDITION_FIELDS: dict[str, frozenset[str]] = {
    "screen_stable": frozenset({"quiet_ms", "region"}),
    "screen_changed": frozenset({"region"}),
    "window": frozenset({"title", "window_class", "state"}),
    "element": frozenset({"role", "name", "name_contains", "states", "app", "visible_only", "state"}),
    "text": frozenset({"text", "role", "app", "visible_only", "state"}),
}
_COMMON = frozenset({"type", "condition", "timeout", "request_id", "include_context", "tab_id"})


class ScreenRegion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    x: Annotated[Coordinate, AT_X]
    y: Annotated[Coordinate, AT_Y]
    width: Annotated[Coordinate, ALONG_X] = Field(ge=1)
    height: Annotated[Coordinate, ALONG_Y] = Field(ge=1)


class WaitForRequest(Request):
    """A tagged union on ``condition``; each condition takes only its own fields (see the table
    in the description)."""

    type: Literal["wait_for"] = "wait_for"
    condition: Condition = Field(description="What to wait for; the other fields depend on it")
    timeout: float = Field(
        default=10.0,
        gt=0,
        le=30,
        description="Seconds (at most 30, as /desktop/wait: loop for longer); then met: false (a normal "
        "answer, not an error)",
    )
    quiet_ms: int | None = Field(
        default=None, ge=1, le=30000, description="screen_stable: no change for this long (default 300)"
    )
    region: ScreenRegion | None = Field(
        default=None, description="screen_stable / screen_changed: only changes touching this region"
    )
    title: str | None = Field(default=None, description="window: a regex searched in the title")
    window_class: str | None = Field(
        default=None,
        validation_alias=AliasChoices("class", "window_class"),
        description="window: a regex searched in WM_CLASS (class or instance)",
    )
    state: Literal["appears", "disappears", "focused"] = Field(
        default="appears",
        description="window: appears / disappears / focused; element and text: appears (matches) or "
        "disappears (stops matching)",
    )
    role: str | None = Field(default=None, description="element / text: role filter, as /accessibility/find")
    name: str | None = Field(default=None, description="element: exact accessible name")
    name_contains: str | None = Field(default=None, description="element: case-insensitive part of the name")
    states: list[str] | None = Field(default=None, description="element: states that must all be set")
    app: str | None = Field(default=None, description="element / text: application name or pid")
    visible_only: bool | None = Field(default=None, description="element / text: showing elements only")
    text: str | None = Field(
        default=None,
        min_length=1,
        description="text: an element whose name or text content contains this (case-insensitive)",
    )

    @model_validator(mode="after")
    def _fields_of_condition(self) -> WaitForRequest:
        allowed = CONDITION_FIELDS[self.condition] | _COMMON
        given = {name for name in self.model_fields_set if getattr(self, name) is not None}
        foreign = sorted(_shown(name) for name in given - allowed)
        if foreign:
            takes = ", ".join(sorted(_shown(name) for name in CONDITION_FIELDS[self.condition]))
            raise ValueError(
                f"condition {self.condition!r} does not take {', '.join(foreign)} (it takes: {takes})"
            )
        if self.state == "focused" and self.condition != "window":
            raise ValueError("state 'focused' is for condition 'window'")
        _REQUIREMENTS[self.condition](self)
        return self


def _shown(field: str) -> str:
    """A field as the body names it (``window_class`` is ``class``)."""
    return "class" if field == "window_class" else field


def _needs_window_pattern(req: WaitForRequest) -> None:
    if req.title is None and req.window_class is None:
        raise ValueError("condition 'window' needs a title and/or a class pattern")
    for pattern in (req.title, req.window_class):
        if pattern is not None:
            _check_regex(pattern)


def _needs_query(req: WaitForRequest) -> None:
    if not (req.role or req.name is not None or req.name_contains or req.states or req.app):
        raise ValueError("condition 'element' needs at least one of role, name, name_contains, states, app")


def _needs_text(req: WaitForRequest) -> None:
    if req.text is None:
        raise ValueError("condition 'text' needs text")


def _nothing(req: WaitForRequest) -> None:
    return None


_REQUIREMENTS = {
    "screen_stable": _nothing,
    "screen_changed": _nothing,
    "window": _needs_window_pattern,
    "element": _needs_query,
    "text": _needs_text,
}


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None


def _omit_null(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class ChangedRegion(Result):
    x: Annotated[int, AT_X]
    y: Annotated[int, AT_Y]
    width: Annotated[int, ALONG_X]
    height: Annotated[int, ALONG_Y]


class WaitForResult(Result):
    met: bool = Field(description="The condition held before the timeout (false: it timed out)")
    condition: Condition
    elapsed_ms: float
    # Typed (not dicts) so their marked positions are mapped into the caller's coordinate space.
    window: Window | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        json_schema_extra=_omit_null,
        description="window: the matching window (as GET /desktop/windows lists it)",
    )
    element: FoundNode | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        json_schema_extra=_omit_null,
        description="element / text: the matching element (as /accessibility/find returns it)",
    )
    changed: ChangedRegion | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        json_schema_extra=_omit_null,
        description="screen_changed: the bounding box of the first change seen",
    )
    changes: int | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        json_schema_extra=_omit_null,
        description="screen_stable / screen_changed: screen changes seen while waiting",
    )
