"""A caller's coordinate space: the picture size a model sees, fitted onto the real screen.

A model is told "the screen is 1024x768" and emits coordinates in that space. The screen keeps
its aspect inside the space: it is scaled by the largest factor that fits and centred, and the
bands left over (top and bottom, or left and right) are black letterbox padding. A 1280x720
screen in a 1024x768 space is a 1024x576 picture whose top-left corner sits at (0, 96).

Positions map pixel to pixel through pixel centres, so a model pixel lands on the screen pixel
it was drawn from and back: model x -> floor((x - left + 0.5) * screen_w / picture_w), screen
x -> floor((x + 0.5) * picture_w / screen_w) + left (each axis on its own factor, the one the
picture was resized by). Extents (widths, heights) scale by the same factors, rounded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

Axis = Literal["x", "y"]
# A space's largest side: 8192 px covers a model's view of any real screen at up to 4x;
# beyond, one screenshot took seconds and GBs of memory for nothing a model can use.
HEADER = "X-Coordinate-Space"  # how an HTTP request declares its space (agent.api.coordinate_space)
MAX_SIDE = 8192
_SPEC = re.compile(r"\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*")


class SpaceError(ValueError):
    """A coordinate space that cannot be used (a malformed size, or a point off its picture)."""


@dataclass(frozen=True, slots=True)
class CoordinateSpace:
    width: int
    height: int

    def __post_init__(self) -> None:
        for name, value in (("width", self.width), ("height", self.height)):
            if not 1 <= value <= MAX_SIDE:
                raise SpaceError(f"the coordinate space's {name} must be 1..{MAX_SIDE} pixels (got {value})")

    @classmethod
    def parse(cls, text: str) -> CoordinateSpace:
        """``"1024x768"`` (WIDTHxHEIGHT, as in X-Coordinate-Space)."""
        match = _SPEC.fullmatch(text)
        if match is None:
            raise SpaceError(f"{text!r} is not WIDTHxHEIGHT in pixels, e.g. 1024x768")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"

    def fit(self, screen_width: int, screen_height: int) -> Fit:
        """Where a screen of that size sits in this space (aspect kept, centred)."""
        factor = min(self.width / screen_width, self.height / screen_height)
        picture_width = min(self.width, max(1, round(screen_width * factor)))
        picture_height = min(self.height, max(1, round(screen_height * factor)))
        return Fit(
            space=self,
            screen_width=screen_width,
            screen_height=screen_height,
            picture_width=picture_width,
            picture_height=picture_height,
            left=(self.width - picture_width) // 2,
            top=(self.height - picture_height) // 2,
        )


@dataclass(frozen=True, slots=True)
class Fit:
    """One screen inside one coordinate space: the picture's size and where it sits."""

    space: CoordinateSpace
    screen_width: int
    screen_height: int
    picture_width: int
    picture_height: int
    left: int
    top: int

    def _sides(self, axis: Axis) -> tuple[int, int, int, int]:
        """(screen side, picture side, picture offset, space side) along ``axis``."""
        if axis == "x":
            return self.screen_width, self.picture_width, self.left, self.space.width
        return self.screen_height, self.picture_height, self.top, self.space.height

    def to_screen(self, axis: Axis, value: int) -> int:
        """A position in the space -> the screen pixel it shows; off the picture is a SpaceError."""
        screen, picture, offset, side = self._sides(axis)
        if not 0 <= value < side:
            raise SpaceError(f"{value} is outside the {self.space} coordinate space (0..{side - 1})")
        if not offset <= value < offset + picture:
            raise SpaceError(
                f"{value} is in the letterbox padding of the {self.space} coordinate space "
                f"(the screen shows at {axis} {offset}..{offset + picture - 1})"
            )
        return min(screen - 1, math.floor((value - offset + 0.5) * screen / picture))

    def to_space(self, axis: Axis, value: int) -> int:
        """A screen position -> the space's pixel showing it (positions off the screen map too)."""
        screen, picture, offset, _ = self._sides(axis)
        return math.floor((value + 0.5) * picture / screen) + offset

    def extent_to_screen(self, axis: Axis, value: int) -> int:
        screen, picture, _, _ = self._sides(axis)
        return max(1, round(value * screen / picture)) if value > 0 else value

    def extent_to_space(self, axis: Axis, value: int) -> int:
        screen, picture, _, _ = self._sides(axis)
        return max(1, round(value * picture / screen)) if value > 0 else value

    @property
    def factors(self) -> tuple[float, float]:
        """Picture pixels per screen pixel, along x and y."""
        return self.picture_width / self.screen_width, self.picture_height / self.screen_height
