"""What both vendors' compat routes share: running our operations for them, and the screenshot
their agent loops take after an action.

A vendor action becomes one or more of our own operations, run through ``agent.actions.space``
exactly as a REST call would be (validated, capability-checked, coordinates mapped through the
caller's space), so the compat routes add a vocabulary, not a second implementation.
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

from agent.actions import space
from agent.actions.outputs import Output
from agent.actions.registry import REGISTRY
from agent.desktop.keys import parse_chord
from agent.errors import AgentError, InvalidArgument
from agent.models.base import ImageResult

if TYPE_CHECKING:
    from agent.services import Services

# How long the screen is left to repaint before the screenshot that follows an action. A
# placeholder for settling on X DAMAGE (issue 15's act-then-observe): ``capture_after`` is the
# one place that decides when the after-action screenshot is taken.
SETTLE_SECONDS = 0.3


async def perform(services: Services, type: str, fields: dict[str, Any], blame: str | None = None) -> Output:
    """Run our operation ``type`` with ``fields`` (in the caller's coordinate space); a 400 it
    raises names the vendor's field ``blame`` that carried the bad value."""
    operation = REGISTRY.get(type)
    try:
        request = operation.prepare(services.config, {"type": type, **fields})
        return await space.run(services, operation, request)
    except InvalidArgument as exc:
        if blame is None:
            raise
        raise InvalidArgument(f"{blame}: {exc.message}", details={**exc.details, "field": blame}) from None


async def capture(services: Services) -> ImageResult:
    """The whole screen as PNG, at the caller's coordinate space when one is declared."""
    image = await perform(services, "screenshot", {})
    if not isinstance(image, ImageResult):  # the screenshot operation answers images only
        raise TypeError(f"screenshot answered {type(image).__name__}")
    return image


async def capture_after(services: Services) -> ImageResult:
    """The screenshot a vendor's loop takes after an action, once the screen has had time to
    repaint (see ``SETTLE_SECONDS``)."""
    await asyncio.sleep(SETTLE_SECONDS)
    return await capture(services)


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
