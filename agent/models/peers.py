"""Request and result models of the peers' vocabularies (seeds 000 and 002) that ours does not
already cover: their action types, their units (pixels for scrolling) and their answer shapes.

A peer's name for one of our actions with the same fields and meaning is a tagged copy of our
model (``tagged``); a peer action with other fields or units has its own model here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from agent.models.base import AT_X, AT_Y, Coordinate, Request, Result
from agent.models.desktop import ButtonName, _AtPoint

# Scrolling in pixels (seed 000's `amount`, seed 002's `dx`/`dy`) turns the wheel one notch per
# this many pixels, rounded to the nearest notch; any non-zero distance turns it at least once.
# 100 px is what a browser scrolls per wheel notch.
PIXELS_PER_NOTCH = 100
MAX_SCROLL_PIXELS = 200 * PIXELS_PER_NOTCH  # the same 200-notch limit as our own scroll


def tagged(model: type[Request], type_name: str, name: str) -> type[Request]:
    """``model`` with its ``type`` tag renamed: a peer's name for the same action."""
    tag: Any = Literal[type_name]  # a literal made at run time
    return create_model(name, __base__=model, __module__=__name__, type=(tag, type_name))


def pixels_to_notches(pixels: int) -> int:
    """Wheel notches for a distance in pixels (sign kept, nearest, at least one if non-zero)."""
    if pixels == 0:
        return 0
    notches = max(1, (abs(pixels) + PIXELS_PER_NOTCH // 2) // PIXELS_PER_NOTCH)
    return notches if pixels > 0 else -notches


class ScreenPoint(BaseModel):
    """``{"x", "y"}`` in screen pixels (seed 000's drag `start` and `end`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: Annotated[Coordinate, AT_X]
    y: Annotated[Coordinate, AT_Y]


class ClickMouseRequest(_AtPoint):
    """Seed 000's click: several clicks, or only the press or the release."""

    type: Literal["click_mouse"] = "click_mouse"
    button: ButtonName = "left"
    num_of_clicks: int = Field(default=1, ge=1, le=3, description="1 click, 2 double, 3 triple")
    click_type: Literal["click", "down", "up"] = Field(
        default="click", description="click: press and release; down: press only; up: release only"
    )


class MoveMouseRequest(Request):
    type: Literal["move_mouse"] = "move_mouse"
    x: Annotated[Coordinate, AT_X]
    y: Annotated[Coordinate, AT_Y]


class DragMouseRequest(Request):
    type: Literal["drag_mouse"] = "drag_mouse"
    start: ScreenPoint
    end: ScreenPoint
    button: ButtonName = "left"


class PressKeysRequest(Request):
    """Seed 000's keys: a chord pressed (and released in reverse), or only held or released."""

    type: Literal["press_keys"] = "press_keys"
    keys: str | list[str] = Field(
        min_length=1, description='Keys pressed together: ["ctrl", "c"], or xdotool syntax "ctrl+c"'
    )
    key_action_type: Literal["press", "down", "up"] = Field(
        default="press", description="press: down then up; down: hold; up: release"
    )


class ScrollPixelsRequest(_AtPoint):
    """Scrolling by a distance in pixels (seed 000's direction/amount, seed 002's dx/dy)."""

    type: Literal["scroll_pixels"] = "scroll_pixels"
    direction: Literal["up", "down", "left", "right"] | None = Field(
        default=None, description="With amount; or give dx/dy instead"
    )
    amount: Coordinate = Field(  # a distance in screen pixels: rounded like a coordinate
        default=3 * PIXELS_PER_NOTCH,
        ge=1,
        le=MAX_SCROLL_PIXELS,
        description=f"Pixels; the wheel turns one notch per {PIXELS_PER_NOTCH} px (nearest, at least one)",
    )
    dx: Coordinate | None = Field(
        default=None, ge=-MAX_SCROLL_PIXELS, le=MAX_SCROLL_PIXELS, description="Pixels right (+) or left (-)"
    )
    dy: Coordinate | None = Field(
        default=None, ge=-MAX_SCROLL_PIXELS, le=MAX_SCROLL_PIXELS, description="Pixels down (+) or up (-)"
    )

    @model_validator(mode="after")
    def _direction_or_deltas(self) -> ScrollPixelsRequest:
        if self.direction is None and self.dx is None and self.dy is None:
            raise ValueError("give direction (up/down/left/right) with amount, or dx/dy")
        return self

    def notches(self) -> tuple[int, int]:
        if self.dx is not None or self.dy is not None:
            return pixels_to_notches(self.dx or 0), pixels_to_notches(self.dy or 0)
        sign = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}[self.direction or "down"]
        return pixels_to_notches(sign[0] * self.amount), pixels_to_notches(sign[1] * self.amount)


class BashActionRequest(Request):
    """Seed 000's bash action: one command line, run by bash."""

    type: Literal["bash_action"] = "bash_action"
    command: str = Field(min_length=1, description="Run by `bash -c` as the desktop user")


class ComputerActionResult(Result):
    """Seed 000's answer: text output, an error, or a screenshot."""

    output: str | None = Field(
        default=None, description="Command output; or the action's JSON result as text (e.g. the cursor)"
    )
    error: str | None = Field(default=None, description="A command's standard error, when not empty")
    base64_image: str | None = Field(default=None, description="A screenshot, base64-encoded")


class PeerActionResult(Result):
    """Seed 002's answer to one action."""

    status: Literal["success"] = "success"
    result: dict[str, Any] = Field(description="The action's result, as POST /actions answers it")
    request_id: str | None = Field(default=None, description="The request's request_id, echoed")
    timestamp: str = Field(description="When the action finished (ISO 8601, UTC)")
