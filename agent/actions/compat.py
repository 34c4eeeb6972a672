"""What both vendors' compat routes share: running our operations for them, and the screenshot
their agent loops take after an action.

A vendor action becomes one or more of our own operations, run through ``agent.actions.space``
exactly as a REST call would be (validated, capability-checked, coordinates mapped through the
caller's space), so the compat routes add a vocabulary, not a second implementation.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from agent.actions import space
from agent.actions.input import on_screen
from agent.actions.observe import settle_then_capture
from agent.actions.outputs import Output
from agent.actions.registry import REGISTRY
from agent.desktop.keys import parse_chord
from agent.errors import AgentError, InvalidArgument
from agent.models.desktop import MoveRequest
from agent.models.image import ImageResult

if TYPE_CHECKING:
    from agent.services import Services


@contextlib.contextmanager
def blamed(blame: str | None) -> Iterator[None]:
    """A 400 raised inside names the vendor's field ``blame`` that carried the bad value."""
    try:
        yield
    except InvalidArgument as exc:
        if blame is None:
            raise
        raise InvalidArgument(f"{blame}: {exc.message}", details={**exc.details, "field": blame}) from None


async def perform(services: Services, type: str, fields: dict[str, Any], blame: str | None = None) -> Output:
    """Run our operation ``type`` with ``fields`` (in the caller's coordinate space); a 400 it
    raises names the vendor's field ``blame`` that carried the bad value."""
    operation = REGISTRY.get(type)
    with blamed(blame):
        request = operation.prepare(services.config, {"type": type, **fields})
        return await space.run(services, operation, request)


async def check_point(services: Services, x: int, y: int, blame: str) -> None:
    """A 400 naming ``blame`` unless (x, y), in the caller's space, is a point on the screen:
    for a sequence (a drag's path) to be refused before any of it is acted on."""
    with blamed(blame):
        request = REGISTRY.get("move").prepare(services.config, {"type": "move", "x": x, "y": y})
        assert isinstance(request, MoveRequest)
        mapped = await space.screen_request(services, request)
        await on_screen(services, mapped.x, mapped.y)


async def capture(services: Services) -> ImageResult:
    """The whole screen as PNG, at the caller's coordinate space when one is declared."""
    image = await perform(services, "screenshot", {})
    if not isinstance(image, ImageResult):  # the screenshot operation answers images only
        raise TypeError(f"screenshot answered {type(image).__name__}")
    return image


async def capture_after(services: Services) -> ImageResult:
    """The screenshot a vendor's loop takes after an action, taken once the screen has settled
    (no X DAMAGE for quiet_ms: ``agent.actions.observe``) instead of after the loops' fixed
    1-2 s sleep; PNG, at the caller's coordinate space."""
    image, _ = await settle_then_capture(services)
    return image


@contextlib.asynccontextmanager
async def input_held(services: Services) -> AsyncIterator[None]:
    """The input lock for the whole vendor action and its screenshot (the compat operations are
    not declared ``uses_input``: their vendor's body takes no ``screenshot_after``)."""
    async with services.input_lock:
        yield


def base64_png(image: ImageResult) -> str:
    return base64.b64encode(image.data).decode("ascii")


def check_keys(spec: str, blame: str) -> None:
    """A 400 naming ``blame`` unless ``spec`` is a chord of known keys ("ctrl+shift")."""
    try:
        parse_chord(spec)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{blame}: {exc.message}", details={**exc.details, "field": blame}) from None


async def holding(services: Services, modifiers: str | None, act: Any, blame: str = "text") -> None:
    """Run ``act()`` (a coroutine function) with ``modifiers`` (a chord: "ctrl+shift") held,
    released whatever happens."""
    if not modifiers:
        await act()
        return
    held = modifiers
    await perform(services, "key_down", {"key": held}, blame)
    try:
        await act()
    finally:
        try:
            await perform(services, "key_up", {"key": held})
        except AgentError:  # the display went away: release_all on the next batch failure covers it
            await services.desktop.release_all()
