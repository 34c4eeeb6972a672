"""The vendors' computer-use vocabularies, as their models emit them (issue 15).

``AnthropicComputerInput`` is the ``input`` of Anthropic's ``computer`` tool_use block
(computer_20250124 and computer_20251124); ``OpenAIComputerAction`` is the ``action`` of an
OpenAI ``computer_call``. The answers are what goes back to the model unchanged: the
``content`` of a ``tool_result``, and the ``output`` of a ``computer_call_output``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.config import JsonDict

from agent.models.base import Coordinate, Result

Pair = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]

ANTHROPIC_ACTIONS = (
    "key",
    "hold_key",
    "type",
    "cursor_position",
    "mouse_move",
    "left_mouse_down",
    "left_mouse_up",
    "left_click",
    "left_click_drag",
    "right_click",
    "middle_click",
    "double_click",
    "triple_click",
    "scroll",
    "wait",
    "screenshot",
    "zoom",
)
OPENAI_ACTIONS = ("click", "double_click", "drag", "keypress", "move", "screenshot", "scroll", "type", "wait")


class _Vendor(BaseModel):
    """A vendor's payload: a field it does not define is a 400 naming it, as on our own routes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AnthropicComputerInput(_Vendor):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"action": "left_click", "coordinate": [512, 384]}]},
    )

    action: str = Field(description=f"One of: {', '.join(ANTHROPIC_ACTIONS)}")
    coordinate: Pair | None = Field(default=None, description="[x, y] in the model's coordinate space")
    start_coordinate: Pair | None = Field(default=None, description="left_click_drag: where the drag starts")
    text: str | None = Field(
        default=None,
        max_length=1_000_000,
        description="type: the text; key and hold_key: xdotool key syntax ('ctrl+s', 'Return'); "
        "clicks and scroll: modifier keys held ('shift', 'ctrl+alt')",
    )
    key: str | None = Field(
        default=None,
        max_length=200,
        description="Modifier keys held during a click (the reference tool's name)",
    )
    scroll_direction: Literal["up", "down", "left", "right"] | None = None
    scroll_amount: int | None = Field(default=None, ge=0, le=200, description="Wheel notches")
    duration: float | None = Field(default=None, ge=0, description="wait and hold_key: seconds (at most 30)")
    region: Annotated[list[Coordinate], Field(min_length=4, max_length=4)] | None = Field(
        default=None, description="zoom: [x0, y0, x1, y1], the rectangle to enlarge"
    )


_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC"
_IMAGE_EXAMPLE: JsonDict = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/png", "data": _PNG},
}


class TextBlock(BaseModel):
    type: Literal["text"] = "text"
    text: str


class Base64Source(BaseModel):
    type: Literal["base64"] = "base64"
    media_type: Literal["image/png"] = "image/png"
    data: str = Field(description="The PNG, base64")


class ImageBlock(BaseModel):
    type: Literal["image"] = "image"
    source: Base64Source


class AnthropicToolResultContent(RootModel[list[TextBlock | ImageBlock]], Result):
    """The ``content`` of the ``tool_result`` to send back for the tool_use, as is."""

    model_config = ConfigDict(json_schema_extra={"examples": [[_IMAGE_EXAMPLE]]})


class OpenAIPoint(_Vendor):
    x: Coordinate
    y: Coordinate


class OpenAIComputerAction(_Vendor):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"examples": [{"type": "click", "button": "left", "x": 512, "y": 384}]},
    )

    type: str = Field(description=f"One of: {', '.join(OPENAI_ACTIONS)}")
    x: Coordinate | None = None
    y: Coordinate | None = None
    button: Literal["left", "right", "wheel", "back", "forward"] | None = None
    path: list[OpenAIPoint] | None = Field(
        default=None, max_length=1000, description="drag: two or more points"
    )
    keys: list[str] | None = Field(
        default=None,
        max_length=32,
        description="keypress: keys pressed together (['CTRL', 'SHIFT', 'T']); on pointer actions: keys held",
    )
    scroll_x: int | None = Field(
        default=None, ge=-100_000, le=100_000, description="Pixels right (+) or left (-)"
    )
    scroll_y: int | None = Field(
        default=None, ge=-100_000, le=100_000, description="Pixels down (+) or up (-)"
    )
    text: str | None = Field(default=None, max_length=1_000_000)


class ComputerScreenshot(Result):
    """The ``output`` of the ``computer_call_output`` to send back for the call, as is."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"type": "computer_screenshot", "image_url": f"data:image/png;base64,{_PNG}"}]
        }
    )

    type: Literal["computer_screenshot"] = "computer_screenshot"
    image_url: str = Field(description="data:image/png;base64,...")
