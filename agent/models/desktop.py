"""Request and result models of the input and screen actions (field names as in seed 003)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, model_validator

from agent.models.base import (
    ALONG_X,
    ALONG_Y,
    AT_X,
    AT_Y,
    MAX_HEIGHT,
    MAX_WIDTH,
    SCALE,
    Coordinate,
    Request,
    Result,
    Success,
)

ButtonName = Literal["left", "right", "middle", "back", "forward"]
Modifiers = list[str] | str

_X = Field(default=None, description="Screen x in pixels; omitted: the pointer's current position")
_Y = Field(default=None, description="Screen y in pixels; omitted: the pointer's current position")
_MODIFIERS: Any = Field(
    default_factory=list,
    description='Keys held during the click: ["ctrl", "shift"] or "ctrl+shift"',
)


class _AtPoint(Request):
    x: Annotated[Coordinate | None, AT_X] = _X
    y: Annotated[Coordinate | None, AT_Y] = _Y

    @model_validator(mode="after")
    def _both_or_neither(self) -> _AtPoint:
        if (self.x is None) != (self.y is None):
            raise ValueError("give both x and y, or neither")
        return self


class ClickRequest(_AtPoint):
    type: Literal["click"] = "click"
    button: ButtonName = "left"
    modifiers: Modifiers = _MODIFIERS


class DoubleClickRequest(_AtPoint):
    type: Literal["double_click"] = "double_click"
    button: ButtonName = "left"
    modifiers: Modifiers = _MODIFIERS


class TripleClickRequest(_AtPoint):
    type: Literal["triple_click"] = "triple_click"
    button: ButtonName = "left"
    modifiers: Modifiers = _MODIFIERS


class RightClickRequest(_AtPoint):
    type: Literal["right_click"] = "right_click"
    modifiers: Modifiers = _MODIFIERS


class MoveRequest(Request):
    type: Literal["move"] = "move"
    x: Annotated[Coordinate, AT_X]
    y: Annotated[Coordinate, AT_Y]


class DragRequest(Request):
    type: Literal["drag"] = "drag"
    start_x: Annotated[Coordinate, AT_X] = Field(validation_alias=AliasChoices("start_x", "x1"))
    start_y: Annotated[Coordinate, AT_Y] = Field(validation_alias=AliasChoices("start_y", "y1"))
    end_x: Annotated[Coordinate, AT_X] = Field(validation_alias=AliasChoices("end_x", "x2"))
    end_y: Annotated[Coordinate, AT_Y] = Field(validation_alias=AliasChoices("end_y", "y2"))
    button: ButtonName = "left"


class ScrollRequest(_AtPoint):
    type: Literal["scroll"] = "scroll"
    direction: Literal["up", "down", "left", "right"] | None = Field(
        default=None, description="With amount; or give dx/dy instead"
    )
    amount: int = Field(default=3, ge=1, le=200, description="Wheel notches")
    dx: int | None = Field(default=None, ge=-200, le=200, description="Notches right (+) or left (-)")
    dy: int | None = Field(default=None, ge=-200, le=200, description="Notches down (+) or up (-)")

    @model_validator(mode="after")
    def _direction_or_deltas(self) -> ScrollRequest:
        if self.direction is None and self.dx is None and self.dy is None:
            raise ValueError("give direction (up/down/left/right) with amount, or dx/dy")
        return self

    def deltas(self) -> tuple[int, int]:
        if self.dx is not None or self.dy is not None:
            return self.dx or 0, self.dy or 0
        sign = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}[self.direction or "down"]
        return sign[0] * self.amount, sign[1] * self.amount


MAX_TYPING_SECONDS = 30  # like a wait: one request must not hold the input for minutes


class TypeRequest(Request):
    type: Literal["type"] = "type"
    text: str = Field(max_length=1_000_000, description="Any Unicode; \\n presses Return, \\t Tab")
    delay_ms: int = Field(
        default=0,
        ge=0,
        le=1000,
        description=f"Pause between characters; characters x delay_ms at most {MAX_TYPING_SECONDS} s",
    )

    @model_validator(mode="after")
    def _bounded(self) -> TypeRequest:
        seconds = len(self.text) * self.delay_ms / 1000
        if seconds > MAX_TYPING_SECONDS:
            raise ValueError(
                f"{len(self.text)} characters at delay_ms={self.delay_ms} would take {seconds:g} s; "
                f"the limit is {MAX_TYPING_SECONDS} s: lower delay_ms or send the text in parts"
            )
        return self


class KeyRequest(Request):
    type: Literal["key"] = "key"
    key: str | None = Field(
        default=None,
        max_length=1000,
        description='xdotool syntax: "ctrl+c", "alt+Tab", "Return"; several chords separated by spaces',
    )
    keys: list[str] | None = Field(
        default=None, max_length=32, description="Alternative: keys pressed together, in order"
    )

    @model_validator(mode="after")
    def _key_or_keys(self) -> KeyRequest:
        if (self.key is None) == (self.keys is None):
            raise ValueError("give key (a string) or keys (a list), not both")
        return self


class HotkeyRequest(Request):
    type: Literal["hotkey"] = "hotkey"
    keys: list[str] = Field(min_length=1, max_length=32, description="Pressed in order, released in reverse")


class KeyDownRequest(Request):
    type: Literal["key_down"] = "key_down"
    key: str = Field(max_length=200)


class KeyUpRequest(Request):
    type: Literal["key_up"] = "key_up"
    key: str = Field(max_length=200)


class MouseDownRequest(_AtPoint):
    type: Literal["mouse_down"] = "mouse_down"
    button: ButtonName = "left"


class MouseUpRequest(_AtPoint):
    type: Literal["mouse_up"] = "mouse_up"
    button: ButtonName = "left"


class WaitRequest(Request):
    type: Literal["wait"] = "wait"
    seconds: float | None = Field(default=None, ge=0, le=30, description="Default 1, at most 30")
    ms: int | None = Field(default=None, ge=0, le=30000, description="Alternative to seconds")

    def duration(self) -> float:
        if self.seconds is not None:
            return self.seconds
        return 1.0 if self.ms is None else self.ms / 1000


class CursorRequest(Request):
    type: Literal["cursor_position"] = "cursor_position"


class ScreenSizeRequest(Request):
    type: Literal["screen_size"] = "screen_size"


class _ImageOptions(Request):
    format: Literal["png", "jpeg", "jpg", "webp"] = "png"
    quality: int = Field(default=75, ge=1, le=100, description="JPEG/WebP quality")
    scale: float | None = SCALE
    max_width: int | None = MAX_WIDTH
    max_height: int | None = MAX_HEIGHT
    cursor: bool = Field(default=False, description="Draw the pointer into the image")
    base64: bool = Field(default=False, description="Answer JSON with the image base64-encoded")


class ScreenshotRequest(_ImageOptions):
    type: Literal["screenshot"] = "screenshot"


class RegionScreenshotRequest(_ImageOptions):
    type: Literal["screenshot_region"] = "screenshot_region"
    x: Annotated[Coordinate, AT_X]
    y: Annotated[Coordinate, AT_Y]
    width: Annotated[Coordinate, ALONG_X] = Field(ge=1)
    height: Annotated[Coordinate, ALONG_Y] = Field(ge=1)


MAX_ZOOM_SIDE = 16384


class ZoomRequest(_ImageOptions):
    """A region captured at full resolution and enlarged (Anthropic's ``zoom``)."""

    type: Literal["zoom"] = "zoom"
    x: Annotated[Coordinate, AT_X]
    y: Annotated[Coordinate, AT_Y]
    width: Annotated[Coordinate, ALONG_X] = Field(ge=1)
    height: Annotated[Coordinate, ALONG_Y] = Field(ge=1)
    scale: float | None = Field(
        default=None, ge=1, le=32, description="Magnification; omitted: fit the output box"
    )


class Position(Result):
    x: Annotated[int, AT_X]
    y: Annotated[int, AT_Y]


class ScreenSize(Result):
    width: Annotated[int, ALONG_X]
    height: Annotated[int, ALONG_Y]


class Waited(Success):
    waited_seconds: float
