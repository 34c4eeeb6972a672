"""Screen actions: screenshots, cursor position, screen size."""

from __future__ import annotations

import dataclasses

from agent.actions.registry import REGISTRY
from agent.actions.space import capture_sizing, current_fit, refuse_sizing
from agent.desktop.backend import CaptureOptions, Region
from agent.errors import InvalidArgument
from agent.models.desktop import (
    MAX_ZOOM_SIDE,
    CursorRequest,
    Position,
    RegionScreenshotRequest,
    ScreenshotRequest,
    ScreenSize,
    ScreenSizeRequest,
    ZoomRequest,
)
from agent.models.image import ImageResult
from agent.services import Services

ImageRequest = ScreenshotRequest | RegionScreenshotRequest | ZoomRequest


def capture_options(req: ImageRequest, **sizing: object) -> CaptureOptions:
    """The request's encoding options; ``sizing`` (size, canvas) comes from a coordinate space or a zoom."""
    if not isinstance(req, ZoomRequest):
        refuse_sizing(req)
    return CaptureOptions(
        format="jpeg" if req.format == "jpg" else req.format,
        quality=req.quality,
        scale=req.scale,
        max_width=req.max_width,
        max_height=req.max_height,
        cursor=req.cursor,
        **sizing,  # type: ignore[arg-type]
    )


async def screenshot(services: Services, req: ScreenshotRequest) -> ImageResult:
    """The screen; under a coordinate space, the space's size with the screen letterboxed in it."""
    image = await _capture(services, None, capture_options(req, **capture_sizing()))
    return _as_requested(image, req.base64)


async def _clipped(services: Services, x: int, y: int, width: int, height: int) -> Region:
    """The region clipped to the screen; a region wholly outside it is a 400."""
    size = await services.desktop.screen_size()
    left, top = max(0, x), max(0, y)
    right, bottom = min(size.width, x + width), min(size.height, y + height)
    if right <= left or bottom <= top:
        raise InvalidArgument(
            f"region {width}x{height} at ({x},{y}) is outside the {size.width}x{size.height} screen",
            details={"screen": {"width": size.width, "height": size.height}},
        )
    return Region(left, top, right - left, bottom - top)


async def screenshot_region(services: Services, req: RegionScreenshotRequest) -> ImageResult:
    """Capture a region, clipped to the screen; under a coordinate space at the space's scale."""
    region = await _clipped(services, req.x, req.y, req.width, req.height)
    fit = current_fit()
    sizing = {}
    if fit is not None:
        factor_x, factor_y = fit.factors
        sizing = {"size": (max(1, round(region.width * factor_x)), max(1, round(region.height * factor_y)))}
    image = await _capture(services, region, capture_options(req, **sizing))
    return _as_requested(image, req.base64)


async def zoom(services: Services, req: ZoomRequest) -> ImageResult:
    """A region enlarged: by ``scale``, else fitted (aspect kept) into the output box, which is
    ``max_width`` x ``max_height``, else the coordinate space's size, else the screen's."""
    region = await _clipped(services, req.x, req.y, req.width, req.height)
    if req.scale is not None:
        size = (round(region.width * req.scale), round(region.height * req.scale))
    else:
        fit = current_fit()
        screen = await services.desktop.screen_size()
        box_width, box_height = (
            (fit.space.width, fit.space.height) if fit is not None else (screen.width, screen.height)
        )
        box_width, box_height = req.max_width or box_width, req.max_height or box_height
        factor = min(box_width / region.width, box_height / region.height)
        size = (max(1, round(region.width * factor)), max(1, round(region.height * factor)))
    if max(size) > MAX_ZOOM_SIDE:
        raise InvalidArgument(
            f"the zoomed image would be {size[0]}x{size[1]}; at most {MAX_ZOOM_SIDE} pixels a side",
            details={"width": size[0], "height": size[1]},
        )
    image = await _capture(services, region, capture_options(req, size=size))
    return _as_requested(image, req.base64)


def _as_requested(image: ImageResult, as_json: bool) -> ImageResult:
    return dataclasses.replace(image, as_json=True) if as_json else image


async def _capture(services: Services, region: Region | None, options: CaptureOptions) -> ImageResult:
    """Through the unchanged-screen cache where there is one (X DAMAGE), else a fresh grab."""
    if services.screenshots is not None:
        return await services.screenshots.capture(region, options)
    return await services.desktop.capture(region, options)


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
    "zoom",
    ZoomRequest,
    zoom,
    summary="A region of the screen enlarged, to read small text",
    description="The region (`x`, `y`, `width`, `height`, in the caller's coordinates like every "
    "position) is captured at the screen's full resolution and scaled up: by `scale` if given, "
    "else to fit (aspect kept) a box of `max_width` x `max_height`, which default to the caller's "
    "coordinate space (X-Coordinate-Space) or else to the screen. The zoomed image is not a "
    "coordinate space: positions stay those of the whole screen.",
    route="/desktop/zoom",
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
