"""The caller's coordinate space, as an HTTP request declares it (issue 15).

Every route takes the header ``X-Coordinate-Space: WIDTHxHEIGHT``; the compat routes also take
Anthropic's own names as query parameters (``?display_width_px=1024&display_height_px=768``),
or OpenAI's (``display_width``/``display_height``). Both given must agree; any of them given
twice is a 400. A side is at most 8192 px. ``agent.actions.space`` does the mapping.
"""

from __future__ import annotations

from aiohttp import web

from agent.desktop.space import HEADER, MAX_SIDE, CoordinateSpace, SpaceError
from agent.errors import InvalidArgument

WIDTH_PARAM = "display_width_px"
HEIGHT_PARAM = "display_height_px"


# OpenAI's tool definition names the same sizes display_width/display_height: accepted alike.
ALIASES = {WIDTH_PARAM: "display_width", HEIGHT_PARAM: "display_height"}


def parse(text: str, source: str = HEADER) -> CoordinateSpace:
    """A declared space, or a 400 naming where it came from."""
    try:
        return CoordinateSpace.parse(text)
    except SpaceError as exc:
        raise InvalidArgument(f"{source}: {exc}", details={"field": source}) from None


def _single(values: list[str], name: str) -> str | None:
    """The one value given for ``name``, None for none; given twice is a 400 (not first-wins)."""
    if len(values) > 1:
        raise InvalidArgument(f"{name}: given {len(values)} times; give it once", details={"field": name})
    return values[0] if values else None


def _query_size(request: web.Request, name: str) -> str | None:
    alias = ALIASES[name]
    values = request.query.getall(name, [])
    aliased = request.query.getall(alias, [])
    if values and aliased:
        raise InvalidArgument(f"{name}: give {name} or {alias}, not both", details={"field": name})
    return _single(values, name) if values else _single(aliased, alias)


def declared_space(request: web.Request, *, query_names: bool = False) -> CoordinateSpace | None:
    """The space the request declares, or None; a malformed, repeated or contradictory one is a 400."""
    header = _single(request.headers.getall(HEADER, []), HEADER)
    declared = parse(header) if header is not None else None
    if not query_names:
        return declared
    width, height = _query_size(request, WIDTH_PARAM), _query_size(request, HEIGHT_PARAM)
    if width is None and height is None:
        return declared
    if width is None or height is None:
        missing = WIDTH_PARAM if width is None else HEIGHT_PARAM
        raise InvalidArgument(
            f"{missing}: give {WIDTH_PARAM} and {HEIGHT_PARAM} together", details={"field": missing}
        )
    from_query = parse(f"{width}x{height}", f"{WIDTH_PARAM}/{HEIGHT_PARAM}")
    if declared is not None and declared != from_query:
        raise InvalidArgument(
            f"{HEADER} says {declared} but {WIDTH_PARAM}/{HEIGHT_PARAM} say {from_query}",
            details={"field": HEADER},
        )
    return from_query


SPACE_RULES = (
    "WIDTHxHEIGHT, e.g. 1024x768 (each side 1..8192; the header once): the size of the picture a model sees. Screenshots come at that size, "
    "the screen scaled by the largest factor that fits (aspect kept) and centred, the bands left over "
    "black (letterboxing); every coordinate in a request (x, y, regions, sizes) is in that space and "
    "every coordinate in an answer (cursor, windows, accessibility bounds and centres) comes back in "
    "it. A position in the letterbox padding or outside the space is a 400. Pixel to pixel: model "
    "(512, 384) in 1024x768 is screen (640, 360) of 1280x720."
)
OPENAPI_PARAMETERS: dict[str, dict[str, object]] = {
    "CoordinateSpace": {
        "name": HEADER,
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
        f"the same as {HEADER}; OpenAI's name display_width is accepted alike",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_SIDE},
    },
    "DisplayHeightPx": {
        "name": HEIGHT_PARAM,
        "in": "query",
        "required": False,
        "description": f"Anthropic's name for the coordinate space's height (with {WIDTH_PARAM}); "
        "OpenAI's name display_height is accepted alike",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_SIDE},
    },
}


def openapi_parameters(*, query_names: bool = False) -> list[dict[str, object]]:
    """The OpenAPI parameters an operation takes for its coordinate space (written out, not
    referenced: a reader of one operation's parameters finds every one by its name)."""
    names = ["CoordinateSpace"] + (["DisplayWidthPx", "DisplayHeightPx"] if query_names else [])
    return [dict(OPENAPI_PARAMETERS[name]) for name in names]
