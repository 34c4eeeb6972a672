"""POST /compat/openai/computer: the ``action`` of an OpenAI ``computer_call``, run as is (issue 15).

The answer is the ``output`` of the ``computer_call_output`` to send back: the screenshot taken
after the action, as a data URL. Key names are OpenAI's (``CTRL``, ``ENTER``, ``ARROWLEFT``,
``CMD``...), mapped by one closed table; a name outside it is a 400 naming it. A single letter
names its key, not the shifted character: ``["CTRL", "A"]`` is ctrl+a.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from agent.actions.compat import (
    base64_png,
    capture,
    capture_after,
    check_point,
    holding,
    input_held,
    perform,
)
from agent.actions.registry import REGISTRY
from agent.errors import AgentError, InvalidArgument
from agent.models.compat import OPENAI_ACTIONS, ComputerScreenshot, OpenAIComputerAction
from agent.models.peers import pixels_to_notches
from agent.services import Services

WAIT_SECONDS = 2.0  # `wait` carries no duration; OpenAI's sample loops wait 2 s
_BUTTONS = {"left": "left", "right": "right", "wheel": "middle", "back": "back", "forward": "forward"}

# OpenAI key name (upper case) -> X keysym name. Single characters are handled apart.
OPENAI_KEYS: dict[str, str] = {
    "CTRL": "Control_L",
    "CONTROL": "Control_L",
    "SHIFT": "Shift_L",
    "ALT": "Alt_L",
    "OPTION": "Alt_L",
    "CMD": "Super_L",
    "COMMAND": "Super_L",
    "META": "Super_L",
    "SUPER": "Super_L",
    "WIN": "Super_L",
    "WINDOWS": "Super_L",
    "ENTER": "Return",
    "RETURN": "Return",
    "ESC": "Escape",
    "ESCAPE": "Escape",
    "TAB": "Tab",
    "SPACE": "space",
    "BACKSPACE": "BackSpace",
    "DELETE": "Delete",
    "DEL": "Delete",
    "INSERT": "Insert",
    "HOME": "Home",
    "END": "End",
    "PAGEUP": "Page_Up",
    "PAGE_UP": "Page_Up",
    "PAGEDOWN": "Page_Down",
    "PAGE_DOWN": "Page_Down",
    "ARROWLEFT": "Left",
    "ARROWRIGHT": "Right",
    "ARROWUP": "Up",
    "ARROWDOWN": "Down",
    "LEFT": "Left",
    "RIGHT": "Right",
    "UP": "Up",
    "DOWN": "Down",
    "CAPSLOCK": "Caps_Lock",
    "NUMLOCK": "Num_Lock",
    "SCROLLLOCK": "Scroll_Lock",
    "PRINTSCREEN": "Print",
    "PAUSE": "Pause",
    "MENU": "Menu",
    "CONTEXTMENU": "Menu",
    "PLUS": "plus",
    "MINUS": "minus",
    "EQUAL": "equal",
    "COMMA": "comma",
    "PERIOD": "period",
    "SLASH": "slash",
    "BACKSLASH": "backslash",
    "SEMICOLON": "semicolon",
    "QUOTE": "apostrophe",
    "BACKQUOTE": "grave",
    "BRACKETLEFT": "bracketleft",
    "BRACKETRIGHT": "bracketright",
    **{f"F{number}": f"F{number}" for number in range(1, 25)},
}


def key_names(keys: list[str], blame: str = "keys") -> list[str]:
    """OpenAI key names -> X keysym names; every unknown one named in one 400."""
    names: list[str] = []
    unknown: list[str] = []
    for key in keys:
        mapped = OPENAI_KEYS.get(key.strip().upper())
        if mapped is None and len(key) == 1 and key.isprintable() and not key.isspace():
            mapped = key.lower() if key.isalpha() else key  # "A" is the a key; "/" is slash
        if mapped is None:
            unknown.append(key)
        else:
            names.append(mapped)
    if unknown:
        listed = ", ".join(repr(key) for key in unknown)
        raise InvalidArgument(
            f"{blame}: unknown key name{'s' if len(unknown) > 1 else ''} {listed}",
            details={"field": blame, "unknown_keys": unknown},
        )
    if not names:
        raise InvalidArgument(f"{blame}: name at least one key", details={"field": blame})
    return names


_TAKES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "click": (("x", "y"), ("button", "keys")),
    "double_click": (("x", "y"), ("keys",)),
    "drag": (("path",), ("keys",)),
    "keypress": (("keys",), ()),
    "move": (("x", "y"), ("keys",)),
    "screenshot": ((), ()),
    "scroll": (("x", "y"), ("scroll_x", "scroll_y", "keys")),
    "type": (("text",), ()),
    "wait": ((), ()),
}
assert set(_TAKES) == set(OPENAI_ACTIONS)


def check_fields(action: OpenAIComputerAction) -> None:
    if action.type not in _TAKES:
        raise InvalidArgument(
            f"type: unknown action type {action.type!r}; known: {', '.join(OPENAI_ACTIONS)}",
            details={"field": "type", "known_types": list(OPENAI_ACTIONS)},
        )
    needs, may = _TAKES[action.type]
    given = {name for name in action.model_fields_set if name != "type" and getattr(action, name) is not None}
    missing = [name for name in needs if name not in given]
    if missing:
        raise InvalidArgument(
            f"{missing[0]}: required for {action.type!r}", details={"field": missing[0], "type": action.type}
        )
    extra = sorted(given - set(needs) - set(may))
    if extra:
        raise InvalidArgument(
            f"{extra[0]}: not accepted for {action.type!r}", details={"field": extra[0], "type": action.type}
        )


def _held(action: OpenAIComputerAction) -> str:
    """The keys a pointer action holds, as a chord for our operations ("" for none)."""
    return "+".join(key_names(action.keys)) if action.keys else ""


async def _click(services: Services, action: OpenAIComputerAction) -> None:
    kind = "double_click" if action.type == "double_click" else "click"
    button = _BUTTONS[action.button or "left"]
    fields = {"x": action.x, "y": action.y, "button": button, "modifiers": _held(action)}
    await perform(services, kind, fields, "x/y")


async def _drag(services: Services, action: OpenAIComputerAction) -> None:
    path = action.path or []
    if len(path) < 2:
        raise InvalidArgument(
            f"path: a drag needs at least two points (got {len(path)})", details={"field": "path"}
        )

    for index, point in enumerate(path):
        await check_point(services, point.x, point.y, f"path[{index}]")

    async def stroke() -> None:
        first, *rest = path
        await perform(services, "mouse_down", {"x": first.x, "y": first.y}, "path[0]")
        try:
            for index, point in enumerate(rest, start=1):
                await perform(services, "move", {"x": point.x, "y": point.y}, f"path[{index}]")
        finally:
            try:
                await perform(services, "mouse_up", {})
            except AgentError:
                await services.desktop.release_all()

    await holding(services, _held(action), stroke, "keys")


async def _keypress(services: Services, action: OpenAIComputerAction) -> None:
    await perform(services, "hotkey", {"keys": key_names(action.keys or [])}, "keys")


async def _move(services: Services, action: OpenAIComputerAction) -> None:
    await holding(
        services,
        _held(action),
        lambda: perform(services, "move", {"x": action.x, "y": action.y}, "x/y"),
        "keys",
    )


async def _scroll(services: Services, action: OpenAIComputerAction) -> None:
    await perform(services, "move", {"x": action.x, "y": action.y}, "x/y")
    dx, dy = pixels_to_notches(action.scroll_x or 0), pixels_to_notches(action.scroll_y or 0)
    if dx or dy:
        fields = {"dx": dx, "dy": dy}
        await holding(
            services, _held(action), lambda: perform(services, "scroll", fields, "scroll_x/scroll_y"), "keys"
        )


async def _type(services: Services, action: OpenAIComputerAction) -> None:
    await perform(services, "type", {"text": action.text}, "text")


async def _nothing(services: Services, action: OpenAIComputerAction) -> None:
    return None


_RUN: dict[str, Callable[[Services, OpenAIComputerAction], Awaitable[None]]] = {
    "click": _click,
    "double_click": _click,
    "drag": _drag,
    "keypress": _keypress,
    "move": _move,
    "scroll": _scroll,
    "type": _type,
    "screenshot": _nothing,
    "wait": _nothing,
}


async def openai_computer(services: Services, action: OpenAIComputerAction) -> ComputerScreenshot:
    check_fields(action)
    if action.type == "wait":  # a pause, not input: others' input goes on meanwhile
        await asyncio.sleep(WAIT_SECONDS)
        image = await capture(services)
    else:
        async with input_held(services):
            await _RUN[action.type](services, action)
            image = await (capture(services) if action.type == "screenshot" else capture_after(services))
    return ComputerScreenshot(image_url=f"data:image/png;base64,{base64_png(image)}")


REGISTRY.add(
    "openai_computer",
    OpenAIComputerAction,
    openai_computer,
    summary="Run the action of an OpenAI computer_call as is; answer its computer_call_output output",
    description="The body is exactly the `action` of a `computer_call` (click with button "
    "left/right/wheel/back/forward, double_click, drag with a `path` of points, keypress with "
    '`keys` such as ["CTRL", "SHIFT", "T"], move, screenshot, scroll with `scroll_x`/`scroll_y` '
    "in pixels at `x`,`y` (one wheel notch per 100 px), type, wait (2 s)); `keys` on a pointer "
    "action are held during it. The answer is the `output` of the `computer_call_output` to send "
    'back unchanged: `{"type": "computer_screenshot", "image_url": "data:image/png;base64,..."}`, '
    "taken after the action. Coordinates are in the model's space (X-Coordinate-Space, or "
    "`display_width_px`/`display_height_px` like the Anthropic route: the tool's display_width "
    "and display_height); without either, screen pixels. Unknown key names, a missing field, a "
    "coordinate off the space: a 400 naming it.",
    route="/compat/openai/computer",
    result=ComputerScreenshot,
    tag="compat",
    actions=False,
    space_query=True,
    max_body=4 * 1024 * 1024,
)
