"""The desktop backend seam: input and screen capture, independent of HTTP.

``DesktopBackend`` is what action handlers call. ``agent.x11.backend.X11Desktop`` drives a real
X server; tests of the HTTP layer use a fake with the same methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from agent.models.image import ImageResult


class Button(StrEnum):
    LEFT = "left"
    MIDDLE = "middle"
    RIGHT = "right"
    BACK = "back"
    FORWARD = "forward"


@dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Size:
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Region:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Key:
    """A resolved key: the name the caller gave and its X keysym."""

    name: str
    keysym: int


Chord = tuple[Key, ...]  # keys pressed together, in order, released in reverse


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    format: str = "png"  # png, jpeg, webp
    quality: int = 75
    scale: float | None = None
    max_width: int | None = None
    max_height: int | None = None
    cursor: bool = False
    # An exact output size (up or down, aspect as given): a coordinate space's picture, a zoom.
    size: tuple[int, int] | None = None
    # The image drawn at (left, top) onto a black canvas (width, height, left, top): letterboxing.
    canvas: tuple[int, int, int, int] | None = None


class DesktopBackend(Protocol):
    async def screen_size(self) -> Size: ...

    async def cursor_position(self) -> Point: ...

    async def move(self, x: int, y: int) -> None: ...

    async def click(self, x: int, y: int, button: Button, count: int, modifiers: Chord) -> None: ...

    async def button(self, x: int, y: int, button: Button, down: bool) -> None: ...

    async def drag(self, start: Point, end: Point, button: Button) -> None: ...

    async def scroll(self, x: int, y: int, dx: int, dy: int) -> None: ...

    async def type_text(self, text: str, delay_ms: int) -> None: ...

    async def press_chords(self, chords: list[Chord], *, reverse_release: bool = False) -> None:
        """Press each chord's keys in order; release in reverse, or as ``xdotool key`` does
        (modifiers first, in modifier-bit order, then the other keys)."""
        ...

    async def key_down(self, chord: Chord) -> None: ...

    async def key_up(self, chord: Chord) -> None: ...

    async def release_all(self) -> None:
        """Release every key and button this agent holds down (after a failed batch, on stop)."""
        ...

    async def capture(self, region: Region | None, options: CaptureOptions) -> ImageResult: ...

    async def check(self) -> str:
        """Raise DisplayUnavailable unless the display answers; return a short description."""
        ...

    async def check_capture(self) -> str:
        """Raise DisplayUnavailable unless screen capture can grab; return a short description."""
        ...

    async def close(self) -> None: ...
