"""Session actions: launch an app, describe the desktop environment, set the wallpaper."""

from __future__ import annotations

import urllib.parse
from typing import TypeVar

from agent.actions.capabilities import Capability, Conditional
from agent.actions.registry import BULK_BODY, REGISTRY
from agent.errors import Unavailable
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
    launcher = _need(services.launcher, "launching apps")
    started = await launcher.launch(req.app, wait_for_window=req.wait_for_window, timeout=req.timeout)
    return Launched(
        pid=started.pid,
        window_id=format_window_id(started.window_id) if started.window_id is not None else None,
        log_path=started.log_path,
    )


async def environment(services: Services, req: EnvironmentRequest) -> Environment:
    return await _need(services.environment, "the environment report").describe()


def is_file_url(url: str) -> bool:
    """Whether the wallpaper would be read from the disk (then it needs the files capability)."""
    try:
        return urllib.parse.urlsplit(url).scheme.lower() == "file"
    except ValueError:  # not a URL at all: the wallpaper service refuses it
        return False


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
    capability=Capability.EXEC,
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
    max_body=BULK_BODY,  # a data: URL
    conditional=Conditional(
        Capability.FILES,
        lambda req: is_file_url(req.url),
        when="the url is a file:// URL (read through the files service)",
        example={"url": "file:///etc/hostname"},
    ),
    summary="Set the desktop wallpaper from an http(s), file or data URL",
)
