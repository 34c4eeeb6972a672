"""Session actions: launch an app, describe the desktop environment, set the wallpaper."""

from __future__ import annotations

from typing import TypeVar

from agent.actions.registry import REGISTRY
from agent.errors import PermissionDenied, Unavailable
from agent.models.windows import (
    Environment,
    EnvironmentRequest,
    Launched,
    LaunchRequest,
    WallpaperRequest,
    WallpaperSet,
)
from agent.services import Services
from agent.x11.windows import format_window_id

T = TypeVar("T")


def _need(service: T | None, what: str) -> T:
    if service is None:
        raise Unavailable(f"{what} is not available in this agent")
    return service


async def launch(services: Services, req: LaunchRequest) -> Launched:
    if not services.config.exec_enabled:
        raise PermissionDenied("launching apps is disabled on this agent (--exec false)")
    launcher = _need(services.launcher, "launching apps")
    started = await launcher.launch(req.app, wait_for_window=req.wait_for_window, timeout=req.timeout)
    return Launched(
        pid=started.pid,
        window_id=format_window_id(started.window_id) if started.window_id is not None else None,
        log_path=started.log_path,
    )


async def environment(services: Services, req: EnvironmentRequest) -> Environment:
    return await _need(services.environment, "the environment report").describe()


async def set_wallpaper(services: Services, req: WallpaperRequest) -> WallpaperSet:
    result = await _need(services.wallpaper, "setting the wallpaper").set_from_url(req.url)
    return WallpaperSet(method=result.method, width=result.width, height=result.height)


REGISTRY.add(
    "launch",
    LaunchRequest,
    launch,
    route="/desktop/launch",
    result=Launched,
    tag="apps",
    summary="Start an app detached in the desktop session (no shell); optionally wait for its window",
)
REGISTRY.add(
    "environment",
    EnvironmentRequest,
    environment,
    route="/desktop/environment",
    method="GET",
    result=Environment,
    tag="apps",
    summary="Display, session, desktop/window manager, user, screen, DPI, keyboard, accessibility bus",
)
REGISTRY.add(
    "set_wallpaper",
    WallpaperRequest,
    set_wallpaper,
    route="/desktop/wallpaper",
    result=WallpaperSet,
    tag="apps",
    summary="Set the desktop wallpaper from an http(s), file or data URL",
)
