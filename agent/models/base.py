"""Base classes for action requests and results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Request(BaseModel):
    """A request body: unknown fields are refused so a typo is a clear 400, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str | None = Field(
        default=None, description="Caller's correlation id (accepted and ignored; see X-Request-Id)."
    )


class Result(BaseModel):
    """A JSON result; its fields are exactly the REST answer body."""

    model_config = ConfigDict(frozen=True)


class Success(Result):
    success: Literal[True] = True


@dataclass(frozen=True, slots=True)
class ImageResult:
    """An encoded image: REST serves the bytes, /actions and base64=true serve JSON."""

    data: bytes
    format: str  # png, jpeg or webp
    width: int
    height: int
    screen_width: int
    screen_height: int
    as_json: bool = False  # the caller asked for base64 JSON on the REST route

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"


class ImageJSON(Result):
    """A screenshot as JSON (``base64=true``, ``/actions`` and ``/batch``)."""

    image: str = Field(description="The encoded image, base64")
    format: Literal["png", "jpeg", "webp"]
    width: int
    height: int
