"""An encoded image, as the desktop hands it over: a plain dataclass, no schema machinery.

The capture path (``agent.x11``) and the screenshot cache make these on every screenshot; they
are imported by services an idle agent builds, so this module must not load pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    cache: str | None = None  # "hit": the bytes kept from an identical earlier request; "miss"

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"
