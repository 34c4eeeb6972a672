"""Base classes for action requests and results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


def document_aliases(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Put every other accepted name of a field (``AliasChoices``) into the model's JSON schema,
    which otherwise shows only the first: the document then accepts what the server accepts."""
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    for info in model.model_fields.values():
        if not isinstance(info.validation_alias, AliasChoices):
            continue
        names = [choice for choice in info.validation_alias.choices if isinstance(choice, str)]
        if not names or names[0] not in properties:
            continue
        for other in names[1:]:
            properties[other] = {**properties[names[0]], "description": f"Another name of `{names[0]}`"}
        if names[0] in required:
            required.remove(names[0])
            schema.setdefault("allOf", []).append({"anyOf": [{"required": [choice]} for choice in names]})
    if "required" in schema and not required:
        del schema["required"]


# The output size fields of every screenshot-like request (screenshots, screenshot_after, screencasts).
SCALE: Any = Field(
    default=None,
    gt=0,
    le=1,
    allow_inf_nan=False,  # NaN compares false to both bounds: refused as not finite, not as "> 1"
    validation_alias=AliasChoices("scale", "scale_factor"),
    description="Downscale factor, 0 < scale <= 1",
)
MAX_WIDTH: Any = Field(default=None, ge=1, le=16384)
MAX_HEIGHT: Any = Field(default=None, ge=1, le=16384)


class Request(BaseModel):
    """A request body: unknown fields are refused so a typo is a clear 400, not a silent no-op."""

    # defer_build: each model's validator is built on its first use, not at start-up (~200 models:
    # tens of milliseconds and a few MiB an idle agent never needs).
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra=document_aliases, defer_build=True
    )

    request_id: str | None = Field(
        default=None, description="Caller's correlation id (accepted and ignored; see X-Request-Id)."
    )
    # Fields seed 002's clients send on every action: see agent.actions.context and /browser.
    include_context: bool | None = Field(
        default=None,
        description="true: the result gains `page_context` (the browser's tab: url, title, tab id, scroll, "
        "viewport, device scale factor; null when no browser runs). Not on image answers.",
    )
    tab_id: str | None = Field(
        default=None,
        description="The browser tab to act on or describe (GET /browser/tabs); ignored by non-browser operations.",
    )


class ScreenPixels:
    """Marks an integer field as a screen coordinate or extent in pixels.

    Clients scale a model's coordinates and send floats: ``agent.actions.leniency`` rounds a
    fractional value of such a field to the nearest pixel (halves up: 10.5 -> 11, -10.5 -> -10);
    the document types it ``number`` and flags it ``x-rounded``. Other integer fields take
    integral numbers only (500.0 yes, 1.5 no).
    """

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        document = handler(schema)
        if document.get("type") == "integer":
            document["type"] = "number"
            document["x-rounded"] = "nearest pixel, halves up"
        return document


Coordinate = Annotated[int, ScreenPixels()]


@dataclass(frozen=True, slots=True)
class ScreenAxis:
    """Marks a field as a position (or, with ``extent``, a length) along the screen's x or y axis.

    A request under a caller's coordinate space (X-Coordinate-Space) has such fields mapped from
    the space to the screen before its handler runs, and its answer's back (``agent.actions.space``).
    """

    axis: Literal["x", "y"]
    extent: bool = False


AT_X = ScreenAxis("x")
AT_Y = ScreenAxis("y")
ALONG_X = ScreenAxis("x", extent=True)
ALONG_Y = ScreenAxis("y", extent=True)


def is_coordinate(metadata: list[Any]) -> bool:
    return any(isinstance(item, ScreenPixels) for item in metadata)


class Result(BaseModel):
    """A JSON result; its fields are exactly the REST answer body."""

    model_config = ConfigDict(frozen=True, defer_build=True)  # built on first use, as Request


class Success(Result):
    success: Literal[True] = True


class ImageJSON(Result):
    """A screenshot as JSON (``base64=true``, ``/actions`` and ``/batch``)."""

    image: str = Field(description="The encoded image, base64")
    format: Literal["png", "jpeg", "webp"]
    width: int
    height: int
