"""Screen actions: screenshots, cursor position, screen size."""

from __future__ import annotations

from agent.actions.registry import REGISTRY
from agent.desktop.backend import CaptureOptions, Region
from agent.errors import InvalidArgument
from agent.models.base import ImageResult
from agent.models.desktop import (
    CursorRequest,
    Position,
    RegionScreenshotRequest,
    ScreenshotRequest,
    ScreenSize,
    ScreenSizeRequest,
)
from agent.services import Services


def capture_options(req: ScreenshotRequest | RegionScreenshotRequest) -> CaptureOptions:
    return CaptureOptions(
        format="jpeg" if req.format == "jpg" else req.format,
        quality=req.quality,
        scale=req.scale,
        max_width=req.max_width,
        max_height=req.max_height,
        cursor=req.cursor,
    )


async def screenshot(services: Services, req: ScreenshotRequest) -> ImageResult:
    image = await services.desktop.capture(None, capture_options(req))
    return _as_requested(image, req.base64)


async def screenshot_region(services: Services, req: RegionScreenshotRequest) -> ImageResult:
    """Capture a region, clipped to the screen; a region wholly outside it is a 400."""
    size = await services.desktop.screen_size()
    left, top = max(0, req.x), max(0, req.y)
    right, bottom = min(size.width, req.x + req.width), min(size.height, req.y + req.height)
    if right <= left or bottom <= top:
        raise InvalidArgument(
            f"region {req.width}x{req.height} at ({req.x},{req.y}) is outside the {size.width}x{size.height} screen",
            details={"screen": {"width": size.width, "height": size.height}},
        )
    region = Region(left, top, right - left, bottom - top)
    image = await services.desktop.capture(region, capture_options(req))
    return _as_requested(image, req.base64)


def _as_requested(image: ImageResult, as_json: bool) -> ImageResult:
    if not as_json:
        return image
    return ImageResult(
        image.data, image.format, image.width, image.height, image.screen_width, image.screen_height, True
    )


async def cursor_position(services: Services, req: CursorRequest) -> Position:
    point = await services.desktop.cursor_position()
    return Position(x=point.x, y=point.y)


async def screen_size(services: Services, req: ScreenSizeRequest) -> ScreenSize:
    size = await services.desktop.screen_size()
    return ScreenSize(width=size.width, height=size.height)


REGISTRY.add(
    "screenshot",
    ScreenshotRequest,
    screenshot,
    summary="Capture the whole screen",
    route="/desktop/screenshot",
    method="GET",
    media="image",
    tag="screen",
)
REGISTRY.add(
    "screenshot_post",
    ScreenshotRequest,
    screenshot,
    summary="Capture the whole screen, the options in a JSON body (seed 002's POST)",
    description="The same as GET /desktop/screenshot with its query fields as a JSON body.",
    route="/desktop/screenshot",
    media="image",
    tag="screen",
    actions=False,
)
REGISTRY.add(
    "screenshot_region",
    RegionScreenshotRequest,
    screenshot_region,
    summary="Capture a region of the screen",
    route="/desktop/screenshot/region",
    media="image",
    tag="screen",
)
REGISTRY.add(
    "cursor_position",
    CursorRequest,
    cursor_position,
    summary="Where the pointer is",
    route="/desktop/cursor",
    method="GET",
    result=Position,
    tag="screen",
)
REGISTRY.add(
    "screen_size",
    ScreenSizeRequest,
    screen_size,
    summary="The screen's size in pixels",
    route="/desktop/screen-size",
    method="GET",
    result=ScreenSize,
    tag="screen",
)
