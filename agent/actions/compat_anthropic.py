"""POST /compat/anthropic/computer: Anthropic's ``computer`` tool input, run as is (issue 15).

The body is the ``input`` of a ``computer`` tool_use block (computer_20250124 and
computer_20251124); the answer is the ``content`` of its ``tool_result``: the screenshot taken
after the action (as Anthropic's reference tool does after every action but
``cursor_position``), ``X=..,Y=..`` for ``cursor_position``, the enlarged region for ``zoom``.
Coordinates are in the caller's coordinate space (``display_width_px``/``display_height_px``
or X-Coordinate-Space), else screen pixels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from agent.actions.compat import (
    base64_png,
    capture,
    capture_after,
    check_keys,
    check_point,
    holding,
    input_held,
    perform,
)
from agent.actions.registry import REGISTRY
from agent.errors import InvalidArgument
from agent.models.compat import (
    ANTHROPIC_ACTIONS,
    AnthropicComputerInput,
    AnthropicToolResultContent,
    Base64Source,
    ImageBlock,
    TextBlock,
)
from agent.models.desktop import Position
from agent.models.image import ImageResult
from agent.services import Services

MAX_HOLD_SECONDS = 30  # like a wait: one request must not hold the input for minutes
Blocks = list[TextBlock | ImageBlock]

# The fields each action takes besides `action` (first: the ones it needs).
_TAKES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "key": (("text",), ()),
    "hold_key": (("text", "duration"), ()),
    "type": (("text",), ()),
    "cursor_position": ((), ()),
    "mouse_move": (("coordinate",), ()),
    "left_mouse_down": ((), ("coordinate",)),
    "left_mouse_up": ((), ("coordinate",)),
    "left_click": ((), ("coordinate", "text", "key")),
    "right_click": ((), ("coordinate", "text", "key")),
    "middle_click": ((), ("coordinate", "text", "key")),
    "double_click": ((), ("coordinate", "text", "key")),
    "triple_click": ((), ("coordinate", "text", "key")),
    "left_click_drag": (("coordinate",), ("start_coordinate",)),
    "scroll": (("scroll_direction", "scroll_amount"), ("coordinate", "text")),
    "wait": (("duration",), ()),
    "screenshot": ((), ()),
    "zoom": (("region",), ()),
}
assert set(_TAKES) == set(ANTHROPIC_ACTIONS)


def check_fields(req: AnthropicComputerInput) -> None:
    """An unknown action, a missing field or one the action does not take: a 400 naming it."""
    if req.action not in _TAKES:
        raise InvalidArgument(
            f"action: unknown action {req.action!r}; known: {', '.join(ANTHROPIC_ACTIONS)}",
            details={"field": "action", "known_actions": list(ANTHROPIC_ACTIONS)},
        )
    needs, may = _TAKES[req.action]
    given = {name for name in req.model_fields_set if name != "action" and getattr(req, name) is not None}
    missing = [name for name in needs if name not in given]
    if missing:
        raise InvalidArgument(
            f"{missing[0]}: required for action {req.action!r}",
            details={"field": missing[0], "action": req.action},
        )
    extra = sorted(given - set(needs) - set(may))
    if extra:
        raise InvalidArgument(
            f"{extra[0]}: not accepted for action {req.action!r}",
            details={"field": extra[0], "action": req.action},
        )


def _point(pair: list[int] | None, prefix: str = "") -> dict[str, int]:
    return {} if pair is None else {f"{prefix}x": pair[0], f"{prefix}y": pair[1]}


def image_block(image: ImageResult) -> ImageBlock:
    return ImageBlock(source=Base64Source(data=base64_png(image)))


async def _after(services: Services) -> Blocks:
    return [image_block(await capture_after(services))]


async def _key(services: Services, req: AnthropicComputerInput) -> Blocks:
    await perform(services, "key", {"key": req.text}, "text")
    return await _after(services)


async def _hold_key(services: Services, req: AnthropicComputerInput) -> Blocks:
    seconds = req.duration or 0.0
    if seconds > MAX_HOLD_SECONDS:
        raise InvalidArgument(
            f"duration: at most {MAX_HOLD_SECONDS} s (got {seconds:g})", details={"field": "duration"}
        )
    await holding(services, req.text, lambda: asyncio.sleep(seconds))
    return await _after(services)


async def _type(services: Services, req: AnthropicComputerInput) -> Blocks:
    await perform(services, "type", {"text": req.text}, "text")
    return await _after(services)


async def _cursor_position(services: Services, req: AnthropicComputerInput) -> Blocks:
    position = await perform(services, "cursor_position", {})
    assert isinstance(position, Position)
    return [TextBlock(text=f"X={position.x},Y={position.y}")]


async def _mouse_move(services: Services, req: AnthropicComputerInput) -> Blocks:
    await perform(services, "move", _point(req.coordinate), "coordinate")
    return await _after(services)


async def _mouse_button(services: Services, req: AnthropicComputerInput) -> Blocks:
    kind = "mouse_down" if req.action == "left_mouse_down" else "mouse_up"
    await perform(services, kind, {"button": "left", **_point(req.coordinate)}, "coordinate")
    return await _after(services)


_CLICKS = {
    "left_click": ("click", "left"),
    "right_click": ("click", "right"),
    "middle_click": ("click", "middle"),
    "double_click": ("double_click", "left"),
    "triple_click": ("triple_click", "left"),
}


async def _click(services: Services, req: AnthropicComputerInput) -> Blocks:
    kind, button = _CLICKS[req.action]
    if req.text and req.key:  # which would be held is ambiguous: refused rather than one dropped
        raise InvalidArgument(
            "text/key: give the modifiers to hold in text or in key, not both", details={"field": "key"}
        )
    modifiers = req.text or req.key or ""
    if modifiers:
        check_keys(modifiers, "text" if req.text else "key")
    fields = {"button": button, "modifiers": modifiers, **_point(req.coordinate)}
    await perform(services, kind, fields, "coordinate")
    return await _after(services)


async def _drag(services: Services, req: AnthropicComputerInput) -> Blocks:
    start = req.start_coordinate
    if start is None:  # computer_20241022's drag: from where the pointer is
        position = await perform(services, "cursor_position", {})
        assert isinstance(position, Position)
        start = [position.x, position.y]
    end = req.coordinate or start
    # Each point checked under the vendor's own field name (not our drag's start_x/end_y).
    if req.start_coordinate is not None:
        await check_point(services, start[0], start[1], "start_coordinate")
    await check_point(services, end[0], end[1], "coordinate")
    await perform(services, "drag", {**_point(start, "start_"), **_point(end, "end_")}, "coordinate")
    return await _after(services)


async def _scroll(services: Services, req: AnthropicComputerInput) -> Blocks:
    amount = req.scroll_amount or 0
    if req.coordinate is not None:
        await perform(services, "move", _point(req.coordinate), "coordinate")
    if req.text:
        check_keys(req.text, "text")
    if amount:
        fields = {"direction": req.scroll_direction, "amount": amount}
        await holding(services, req.text, lambda: perform(services, "scroll", fields, "scroll_amount"))
    return await _after(services)


async def _wait(services: Services, req: AnthropicComputerInput) -> Blocks:
    await perform(services, "wait", {"seconds": req.duration}, "duration")
    return [image_block(await capture(services))]


async def _screenshot(services: Services, req: AnthropicComputerInput) -> Blocks:
    return [image_block(await capture(services))]


async def _zoom(services: Services, req: AnthropicComputerInput) -> Blocks:
    x0, y0, x1, y1 = req.region or (0, 0, 0, 0)
    if x1 <= x0 or y1 <= y0:
        raise InvalidArgument(
            f"region: [x0, y0, x1, y1] needs x1 > x0 and y1 > y0 (got {req.region})",
            details={"field": "region"},
        )
    image = await perform(services, "zoom", {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}, "region")
    assert isinstance(image, ImageResult)
    return [image_block(image)]


_RUN: dict[str, Callable[[Services, AnthropicComputerInput], Awaitable[Blocks]]] = {
    "key": _key,
    "hold_key": _hold_key,
    "type": _type,
    "cursor_position": _cursor_position,
    "mouse_move": _mouse_move,
    "left_mouse_down": _mouse_button,
    "left_mouse_up": _mouse_button,
    **dict.fromkeys(_CLICKS, _click),
    "left_click_drag": _drag,
    "scroll": _scroll,
    "wait": _wait,
    "screenshot": _screenshot,
    "zoom": _zoom,
}


async def anthropic_computer(services: Services, req: AnthropicComputerInput) -> AnthropicToolResultContent:
    check_fields(req)
    if req.action == "wait":  # a pause, not input: others' input goes on meanwhile
        return AnthropicToolResultContent(await _wait(services, req))
    async with input_held(services):
        return AnthropicToolResultContent(await _RUN[req.action](services, req))


REGISTRY.add(
    "anthropic_computer",
    AnthropicComputerInput,
    anthropic_computer,
    summary="Run the input of Anthropic's computer tool_use as is; answer its tool_result content",
    description="The body is exactly the `input` object of a `computer` tool_use block "
    "(computer_20250124, computer_20251124: key, hold_key, type, cursor_position, mouse_move, "
    "left_mouse_down, left_mouse_up, left_click, left_click_drag, right_click, middle_click, "
    "double_click, triple_click, scroll, wait, screenshot, zoom); the answer is the `content` "
    "list of the matching `tool_result`, to send back unchanged: a PNG screenshot taken after "
    "the action (every action but cursor_position), `X=..,Y=..` text for cursor_position, the "
    "enlarged region for zoom. Coordinates are in the model's space: `display_width_px` and "
    "`display_height_px` (as in the tool definition) or X-Coordinate-Space; without either, "
    "screen pixels. A bad input (unknown action, missing or extra field, a coordinate off the "
    "space) is a 400 naming the field; the loop reports it to the model as an error tool_result.",
    route="/compat/anthropic/computer",
    result=AnthropicToolResultContent,
    tag="compat",
    actions=False,
    space_query=True,
    max_body=4 * 1024 * 1024,
)
