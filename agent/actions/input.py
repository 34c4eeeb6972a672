"""Pointer and keyboard actions: validated against the screen, then sent through the backend."""

from __future__ import annotations

import asyncio
import time

from agent.actions.registry import DEFAULT_BODY_LIMIT, REGISTRY, Handler, MiB, RequestModel
from agent.desktop.backend import Button, Chord, Point
from agent.desktop.keys import parse_chord, parse_keys, parse_sequence
from agent.errors import InvalidArgument
from agent.models.base import Success
from agent.models.desktop import (
    ClickRequest,
    DoubleClickRequest,
    DragRequest,
    HotkeyRequest,
    KeyDownRequest,
    KeyRequest,
    KeyUpRequest,
    Modifiers,
    MouseDownRequest,
    MouseUpRequest,
    MoveRequest,
    RightClickRequest,
    ScrollRequest,
    TripleClickRequest,
    TypeRequest,
    Waited,
    WaitRequest,
)
from agent.services import Services


async def on_screen(services: Services, x: int | None, y: int | None, what: str = "") -> Point:
    """The point to act at: checked against the screen, or the pointer's position when omitted."""
    if x is None or y is None:
        return await services.desktop.cursor_position()
    size = await services.desktop.screen_size()
    if not (0 <= x < size.width and 0 <= y < size.height):
        label = f"{what} " if what else ""
        raise InvalidArgument(
            f"{label}({x},{y}) is outside the {size.width}x{size.height} screen",
            details={"x": x, "y": y, "screen": {"width": size.width, "height": size.height}},
        )
    return Point(x, y)


def modifier_chord(modifiers: Modifiers) -> Chord:
    if isinstance(modifiers, str):
        return parse_chord(modifiers) if modifiers.strip() else ()
    return parse_keys(modifiers) if modifiers else ()


async def _click(
    services: Services, req: ClickRequest | DoubleClickRequest | TripleClickRequest, count: int
) -> Success:
    point = await on_screen(services, req.x, req.y)
    await services.desktop.click(point.x, point.y, Button(req.button), count, modifier_chord(req.modifiers))
    return Success()


async def click(services: Services, req: ClickRequest) -> Success:
    return await _click(services, req, 1)


async def double_click(services: Services, req: DoubleClickRequest) -> Success:
    return await _click(services, req, 2)


async def triple_click(services: Services, req: TripleClickRequest) -> Success:
    return await _click(services, req, 3)


async def right_click(services: Services, req: RightClickRequest) -> Success:
    point = await on_screen(services, req.x, req.y)
    await services.desktop.click(point.x, point.y, Button.RIGHT, 1, modifier_chord(req.modifiers))
    return Success()


async def move(services: Services, req: MoveRequest) -> Success:
    point = await on_screen(services, req.x, req.y)
    await services.desktop.move(point.x, point.y)
    return Success()


async def drag(services: Services, req: DragRequest) -> Success:
    start = await on_screen(services, req.start_x, req.start_y, "start")
    end = await on_screen(services, req.end_x, req.end_y, "end")
    await services.desktop.drag(start, end, Button(req.button))
    return Success()


async def scroll(services: Services, req: ScrollRequest) -> Success:
    point = await on_screen(services, req.x, req.y)
    dx, dy = req.deltas()
    await services.desktop.scroll(point.x, point.y, dx, dy)
    return Success()


async def type_text(services: Services, req: TypeRequest) -> Success:
    await services.desktop.type_text(req.text, req.delay_ms)
    return Success()


async def key(services: Services, req: KeyRequest) -> Success:
    chords = [parse_keys(req.keys)] if req.keys is not None else parse_sequence(req.key or "")
    if not chords:
        raise InvalidArgument("key is empty")
    await services.desktop.press_chords(chords)
    return Success()


async def hotkey(services: Services, req: HotkeyRequest) -> Success:
    await services.desktop.press_chords([parse_keys(req.keys)], reverse_release=True)
    return Success()


async def key_down(services: Services, req: KeyDownRequest) -> Success:
    await services.desktop.key_down(parse_chord(req.key))
    return Success()


async def key_up(services: Services, req: KeyUpRequest) -> Success:
    await services.desktop.key_up(parse_chord(req.key))
    return Success()


async def mouse_down(services: Services, req: MouseDownRequest) -> Success:
    point = await on_screen(services, req.x, req.y)
    await services.desktop.button(point.x, point.y, Button(req.button), down=True)
    return Success()


async def mouse_up(services: Services, req: MouseUpRequest) -> Success:
    point = await on_screen(services, req.x, req.y)
    await services.desktop.button(point.x, point.y, Button(req.button), down=False)
    return Success()


async def wait(services: Services, req: WaitRequest) -> Waited:
    started = time.monotonic()
    await asyncio.sleep(req.duration())
    return Waited(waited_seconds=round(time.monotonic() - started, 3))


_INPUT_ACTIONS: tuple[tuple[str, RequestModel, Handler, str, str], ...] = (
    ("click", ClickRequest, click, "/desktop/click", "Click a mouse button at (x, y)"),
    ("double_click", DoubleClickRequest, double_click, "/desktop/double-click", "Double-click at (x, y)"),
    ("triple_click", TripleClickRequest, triple_click, "/desktop/triple-click", "Triple-click at (x, y)"),
    ("right_click", RightClickRequest, right_click, "/desktop/right-click", "Right-click at (x, y)"),
    ("move", MoveRequest, move, "/desktop/move", "Move the pointer to (x, y)"),
    ("drag", DragRequest, drag, "/desktop/drag", "Press, move through intermediate points, release"),
    ("scroll", ScrollRequest, scroll, "/desktop/scroll", "Turn the wheel at (x, y)"),
    ("type", TypeRequest, type_text, "/desktop/type", "Type Unicode text exactly, whatever the layout"),
    ("key", KeyRequest, key, "/desktop/key", "Press a key combination (xdotool syntax)"),
    ("hotkey", HotkeyRequest, hotkey, "/desktop/hotkey", "Press keys together, release in reverse"),
    ("key_down", KeyDownRequest, key_down, "/desktop/key-down", "Press and hold a key"),
    ("key_up", KeyUpRequest, key_up, "/desktop/key-up", "Release a held key"),
    ("mouse_down", MouseDownRequest, mouse_down, "/desktop/mouse-down", "Press and hold a mouse button"),
    ("mouse_up", MouseUpRequest, mouse_up, "/desktop/mouse-up", "Release a mouse button"),
)
for _type, _model, _handler, _route, _summary in _INPUT_ACTIONS:
    REGISTRY.add(
        _type,
        _model,
        _handler,
        summary=_summary,
        route=_route,
        result=Success,
        uses_input=True,
        tag="input",
        # Text to type: at most 1,000,000 characters (up to 4 bytes each).
        max_body=4 * MiB if _type == "type" else DEFAULT_BODY_LIMIT,
    )

REGISTRY.add(
    "wait",
    WaitRequest,
    wait,
    summary="Pause server-side (at most 30 s)",
    route="/desktop/wait",
    result=Waited,
    tag="input",
)
