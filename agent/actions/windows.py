"""Window actions: list, focus, size, position, resize, move, maximize, minimize, close."""

from __future__ import annotations

from agent.actions.registry import REGISTRY
from agent.errors import Unavailable
from agent.models.base import Success
from agent.models.windows import (
    CloseWindowRequest,
    FocusWindowRequest,
    ListWindowsRequest,
    MaximizeWindowRequest,
    MinimizeWindowRequest,
    MoveWindowRequest,
    ResizeWindowRequest,
    Window,
    WindowList,
    WindowPosition,
    WindowPositionRequest,
    WindowSize,
    WindowSizeRequest,
)
from agent.services import Services
from agent.x11.windows import WindowService, parse_window_id


def _windows(services: Services) -> WindowService:
    if services.windows is None:
        raise Unavailable("window management is not available in this agent")
    return services.windows


async def list_windows(services: Services, req: ListWindowsRequest) -> WindowList:
    return WindowList(
        windows=[Window.model_validate(info) for info in await _windows(services).list_windows()]
    )


async def focus_window(services: Services, req: FocusWindowRequest) -> Success:
    await _windows(services).focus(parse_window_id(req.window_id))
    return Success()


async def window_size(services: Services, req: WindowSizeRequest) -> WindowSize:
    info = await _windows(services).get(parse_window_id(req.window_id))
    return WindowSize(width=info.width, height=info.height)


async def window_position(services: Services, req: WindowPositionRequest) -> WindowPosition:
    info = await _windows(services).get(parse_window_id(req.window_id))
    return WindowPosition(x=info.x, y=info.y)


async def resize_window(services: Services, req: ResizeWindowRequest) -> Success:
    await _windows(services).resize(parse_window_id(req.window_id), req.width, req.height)
    return Success()


async def move_window(services: Services, req: MoveWindowRequest) -> Success:
    await _windows(services).move(parse_window_id(req.window_id), req.x, req.y)
    return Success()


async def maximize_window(services: Services, req: MaximizeWindowRequest) -> Success:
    await _windows(services).maximize(parse_window_id(req.window_id))
    return Success()


async def minimize_window(services: Services, req: MinimizeWindowRequest) -> Success:
    await _windows(services).minimize(parse_window_id(req.window_id))
    return Success()


async def close_window(services: Services, req: CloseWindowRequest) -> Success:
    await _windows(services).close_window(parse_window_id(req.window_id))
    return Success()


_W = "/desktop/window/{window_id}"
REGISTRY.add(
    "list_windows",
    ListWindowsRequest,
    list_windows,
    route="/desktop/windows",
    method="GET",
    result=WindowList,
    tag="windows",
    summary="List the managed top-level windows (client-area geometry in screen pixels)",
)
REGISTRY.add(
    "focus_window",
    FocusWindowRequest,
    focus_window,
    route="/desktop/window/focus",
    result=Success,
    tag="windows",
    summary="Activate and raise a window (de-minimizing it); answers once it has focus",
)
REGISTRY.add(
    "window_size",
    WindowSizeRequest,
    window_size,
    route=f"{_W}/size",
    method="GET",
    result=WindowSize,
    tag="windows",
    summary="A window's client-area size",
)
REGISTRY.add(
    "window_position",
    WindowPositionRequest,
    window_position,
    route=f"{_W}/position",
    method="GET",
    result=WindowPosition,
    tag="windows",
    summary="A window's client-area position on the screen",
)
REGISTRY.add(
    "resize_window",
    ResizeWindowRequest,
    resize_window,
    route=f"{_W}/resize",
    result=Success,
    tag="windows",
    summary="Resize a window's client area (the app may round to its size increments)",
)
REGISTRY.add(
    "move_window",
    MoveWindowRequest,
    move_window,
    route=f"{_W}/move",
    result=Success,
    tag="windows",
    summary="Move a window so its client area's top-left corner is at (x, y)",
)
REGISTRY.add(
    "maximize_window",
    MaximizeWindowRequest,
    maximize_window,
    route=f"{_W}/maximize",
    result=Success,
    tag="windows",
    summary="Maximize a window",
)
REGISTRY.add(
    "minimize_window",
    MinimizeWindowRequest,
    minimize_window,
    route=f"{_W}/minimize",
    result=Success,
    tag="windows",
    summary="Minimize (iconify) a window",
)
REGISTRY.add(
    "close_window",
    CloseWindowRequest,
    close_window,
    route=f"{_W}/close",
    result=Success,
    tag="windows",
    summary="Ask a window to close (politely: the app may ask to save first)",
)
