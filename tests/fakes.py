"""A fake desktop for the unit tier: the HTTP layer's behaviour without an X server."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.desktop.backend import Button, CaptureOptions, Chord, Point, Region, Size
from agent.desktop.imaging import Encoder, Frame, target_size
from agent.desktop.keys import text_keysyms
from agent.errors import DisplayUnavailable
from agent.models.image import ImageResult


@dataclass
class FakeDesktop:
    size: Size = field(default_factory=lambda: Size(1280, 720))
    pointer: Point = field(default_factory=lambda: Point(0, 0))
    available: bool = True
    log: list[tuple[object, ...]] = field(default_factory=list)
    held: list[str] = field(default_factory=list)

    def _require(self) -> None:
        if not self.available:
            raise DisplayUnavailable("fake display is down")

    async def screen_size(self) -> Size:
        self._require()
        return self.size

    async def cursor_position(self) -> Point:
        self._require()
        return self.pointer

    async def move(self, x: int, y: int) -> None:
        self._require()
        self.pointer = Point(x, y)
        self.log.append(("move", x, y))

    async def click(self, x: int, y: int, button: Button, count: int, modifiers: Chord) -> None:
        self._require()
        self.pointer = Point(x, y)
        self.log.append(("click", x, y, button.value, count, tuple(k.name for k in modifiers)))

    async def button(self, x: int, y: int, button: Button, down: bool) -> None:
        self._require()
        self.log.append(("button", x, y, button.value, down))
        if down:
            self.held.append(button.value)

    async def drag(self, start: Point, end: Point, button: Button) -> None:
        self._require()
        self.log.append(("drag", start, end, button.value))

    async def scroll(self, x: int, y: int, dx: int, dy: int) -> None:
        self._require()
        self.log.append(("scroll", x, y, dx, dy))

    async def type_text(self, text: str, delay_ms: int) -> None:
        self._require()
        text_keysyms(text)
        self.log.append(("type", text, delay_ms))

    async def press_chords(self, chords: list[Chord], *, reverse_release: bool = False) -> None:
        self._require()
        self.log.append(("keys", [[k.name for k in chord] for chord in chords], reverse_release))

    async def key_down(self, chord: Chord) -> None:
        self._require()
        self.held.extend(k.name for k in chord)
        self.log.append(("key_down", [k.name for k in chord]))

    async def key_up(self, chord: Chord) -> None:
        self._require()
        self.log.append(("key_up", [k.name for k in chord]))

    async def release_all(self) -> None:
        self.log.append(("release_all", tuple(self.held)))
        self.held.clear()

    async def capture(self, region: Region | None, options: CaptureOptions) -> ImageResult:
        self._require()
        region = region or Region(0, 0, self.size.width, self.size.height)
        pixels = Frame(bytes((10, 20, 30, 0)) * (region.width * region.height), region.width, region.height)
        size = target_size(region.width, region.height, options.scale, options.max_width, options.max_height)
        encoded = Encoder().encode(pixels, format=options.format, quality=options.quality, size=size)
        return ImageResult(
            encoded.data, options.format, encoded.width, encoded.height, self.size.width, self.size.height
        )

    async def check(self) -> str:
        self._require()
        return "fake"

    async def check_capture(self) -> str:
        self._require()
        return "fake capture"

    async def close(self) -> None:
        self.log.append(("close",))
