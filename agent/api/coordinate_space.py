"""The caller's coordinate space, as an HTTP request declares it (issue 15).

Every route takes the header ``X-Coordinate-Space: WIDTHxHEIGHT``; the compat routes also take
Anthropic's own names as query parameters (``?display_width_px=1024&display_height_px=768``).
Both given must agree. ``agent.actions.space`` does the mapping.
"""

from __future__ import annotations

from aiohttp import web

from agent.actions import space
from agent.desktop.space import CoordinateSpace
from agent.errors import InvalidArgument

WIDTH_PARAM = "display_width_px"
HEIGHT_PARAM = "display_height_px"


def declared_space(request: web.Request, *, query_names: bool = False) -> CoordinateSpace | None:
    """The space the request declares, or None; a malformed or contradictory one is a 400."""
    header = request.headers.get(space.HEADER)
    declared = space.parse(header) if header is not None else None
    if not query_names:
        return declared
    width, height = request.query.get(WIDTH_PARAM), request.query.get(HEIGHT_PARAM)
    if width is None and height is None:
        return declared
    if width is None or height is None:
        missing = WIDTH_PARAM if width is None else HEIGHT_PARAM
        raise InvalidArgument(
            f"{missing}: give {WIDTH_PARAM} and {HEIGHT_PARAM} together", details={"field": missing}
        )
    from_query = space.parse(f"{width}x{height}", f"{WIDTH_PARAM}/{HEIGHT_PARAM}")
    if declared is not None and declared != from_query:
        raise InvalidArgument(
            f"{space.HEADER} says {declared} but {WIDTH_PARAM}/{HEIGHT_PARAM} say {from_query}",
            details={"field": space.HEADER},
        )
    return from_query


SPACE_RULES = (
    "WIDTHxHEIGHT, e.g. 1024x768: the size of the picture a model sees. Screenshots come at that size, "
    "the screen scaled by the largest factor that fits (aspect kept) and centred, the bands left over "
    "black (letterboxing); every coordinate in a request (x, y, regions, sizes) is in that space and "
    "every coordinate in an answer (cursor, windows, accessibility bounds and centres) comes back in "
    "it. A position in the letterbox padding or outside the space is a 400. Pixel to pixel: model "
    "(512, 384) in 1024x768 is screen (640, 360) of 1280x720."
)
OPENAPI_PARAMETERS: dict[str, dict[str, object]] = {
    "CoordinateSpace": {
        "name": space.HEADER,
        "in": "header",
        "required": False,
        "description": SPACE_RULES,
        "schema": {"type": "string", "pattern": r"^\d+[xX]\d+$", "examples": ["1024x768"]},
    },
    "DisplayWidthPx": {
        "name": WIDTH_PARAM,
        "in": "query",
        "required": False,
        "description": f"Anthropic's name for the coordinate space's width (with {HEIGHT_PARAM}); "
        f"the same as {space.HEADER}",
        "schema": {"type": "integer", "minimum": 1, "maximum": 16384},
    },
    "DisplayHeightPx": {
        "name": HEIGHT_PARAM,
        "in": "query",
        "required": False,
        "description": f"Anthropic's name for the coordinate space's height (with {WIDTH_PARAM})",
        "schema": {"type": "integer", "minimum": 1, "maximum": 16384},
    },
}


def openapi_parameters(*, query_names: bool = False) -> list[dict[str, object]]:
    """The OpenAPI parameters an operation takes for its coordinate space (written out, not
    referenced: a reader of one operation's parameters finds every one by its name)."""
    names = ["CoordinateSpace"] + (["DisplayWidthPx", "DisplayHeightPx"] if query_names else [])
    return [dict(OPENAPI_PARAMETERS[name]) for name in names]
