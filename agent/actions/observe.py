"""Act, then observe: settle (no X DAMAGE for a quiet window) and capture, for any input action.

``Registry.add`` passes every input operation (``uses_input``) through ``with_screenshot_after``,
which adds the ``screenshot_after`` field to its request and ``screenshot`` to its answer: REST,
``/actions`` and ``/batch`` alike, declared once. The compat routes call ``settle_then_capture``
(or ``act_then_observe`` around their own action).

Why settle on DAMAGE instead of a fixed sleep: the screen says when the application has
finished repainting; a fixed sleep is either too long (most of an agent episode's wall time)
or too short (a screenshot of the old screen). The screenshot is taken under the input lock,
so it shows this action's effect, not another client's next input.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, create_model

from agent.actions.space import capture_sizing, refuse_sizing
from agent.desktop.backend import CaptureOptions
from agent.models.base import Success
from agent.models.image import ImageResult
from agent.models.observe import ScreenshotAfter, SettledScreenshot
from agent.x11.change_watch import ChangeWatch, watching

if TYPE_CHECKING:
    from agent.services import Services

SCREENSHOT_AFTER_HELP = (
    "Answer with a screenshot (base64 in `screenshot`) taken once the screen has settled after the "
    "action: no X DAMAGE change for quiet_ms (default 250), at most max_wait_ms (default 3000) after "
    "it; with the screenshot options format, quality, scale, max_width, max_height, cursor (under "
    "X-Coordinate-Space the image is the space's size: scale, max_width, max_height are a 400). `{}`: defaults"
)


@dataclass(frozen=True, slots=True)
class Settled:
    settled: bool  # quiet for quiet_ms before max_wait_ms
    waited_ms: float  # from the start of settling to its end
    changes: int  # changes the watch saw (from its start)


def capture_options(options: ScreenshotAfter) -> CaptureOptions:
    """Under a caller's coordinate space (X-Coordinate-Space) the image is the space's size,
    the screen letterboxed in it, like every screenshot: scale and max_* are refused then
    (``refuse_sizing``, before the action)."""
    return CaptureOptions(
        format="jpeg" if options.format == "jpg" else options.format,
        quality=options.quality,
        scale=options.scale,
        max_width=options.max_width,
        max_height=options.max_height,
        cursor=options.cursor,
        **capture_sizing(),  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def _watch(services: Services) -> AsyncIterator[ChangeWatch | None]:
    """Screen changes from now on; None without a monitor (a fake desktop): no settling."""
    if services.damage is None:
        yield None
        return
    async with watching(services.damage) as watch:
        yield watch


async def settle(watch: ChangeWatch | None, quiet_ms: int, max_wait_ms: int) -> Settled:
    """Wait until ``watch`` saw no change for ``quiet_ms`` (counted from its start at the
    earliest), at most ``max_wait_ms`` from now."""
    started = time.monotonic()
    if watch is None:
        return Settled(False, 0.0, 0)
    quiet = await watch.quiet(quiet_ms / 1000, started + max_wait_ms / 1000)
    return Settled(quiet, round((time.monotonic() - started) * 1000, 1), watch.count)


async def _capture(services: Services, options: ScreenshotAfter, settled: Settled) -> SettledScreenshot:
    image = await services.desktop.capture(None, capture_options(options))
    return settled_screenshot(image, settled)


def settled_screenshot(image: ImageResult, settled: Settled) -> SettledScreenshot:
    return SettledScreenshot(
        image=base64.b64encode(image.data).decode("ascii"),
        format=image.format,  # type: ignore[arg-type]
        width=image.width,
        height=image.height,
        settled=settled.settled,
        waited_ms=settled.waited_ms,
        changes=settled.changes,
    )


async def settle_then_capture(
    services: Services, options: ScreenshotAfter | None = None
) -> tuple[ImageResult, Settled]:
    """Settle from now (``options``' quiet_ms / max_wait_ms), then capture the whole screen with
    ``options``' image settings. For callers that already acted (the compat routes)."""
    options = options or ScreenshotAfter()
    async with _watch(services) as watch:
        settled = await settle(watch, options.quiet_ms, options.max_wait_ms)
        image = await services.desktop.capture(None, capture_options(options))
    return image, settled


class Observation:
    """What ``act_then_observe`` hands its block: ``screenshot()`` once the action is done."""

    def __init__(self, services: Services, watch: ChangeWatch | None, options: ScreenshotAfter) -> None:
        self._services = services
        self._watch = watch
        self._options = options

    async def screenshot(self) -> SettledScreenshot:
        """Settle: no change for quiet_ms from now (the action's end; changes during the action
        count in ``changes`` but do not delay), then capture."""
        if self._watch is not None:
            self._watch.started = time.monotonic()
        settled = await settle(self._watch, self._options.quiet_ms, self._options.max_wait_ms)
        return await _capture(self._services, self._options, settled)


@contextlib.asynccontextmanager
async def act_then_observe(services: Services, options: ScreenshotAfter) -> AsyncIterator[Observation]:
    """Watch the screen from before the action: act inside the block, then ``screenshot()``."""
    async with _watch(services) as watch:
        yield Observation(services, watch, options)


# -- the registry hook ---------------------------------------------------------------------
_WRAPPED = "__screenshot_after_of__"
_derived: dict[type[BaseModel], type[BaseModel]] = {}


def with_screenshot_after(
    model: type[BaseModel], handler: Callable[..., Awaitable[Any]], result: type[BaseModel] | None
) -> tuple[type[BaseModel], Callable[..., Awaitable[Any]], type[BaseModel]]:
    """The input operation's request model with ``screenshot_after``, its handler taking the
    screenshot when asked, and its answer model with ``screenshot``."""
    request_model = _derived.get(model) or _derive(
        model, "screenshot_after", ScreenshotAfter, SCREENSHOT_AFTER_HELP
    )
    _derived[model] = request_model
    base = result or Success
    answer_model = _derived.get(base) or _derive(
        base, "screenshot", SettledScreenshot, "The screenshot asked for with screenshot_after", "Observed"
    )
    _derived[base] = answer_model
    if hasattr(handler, _WRAPPED):  # an alias re-declares a wrapped handler: the same one
        return request_model, handler, answer_model
    inner = handler

    async def observed(services: Services, request: Any, *rest: Any) -> Any:
        options: ScreenshotAfter | None = getattr(request, "screenshot_after", None)
        if options is None:
            return await inner(services, request, *rest)
        refuse_sizing(options)  # before acting: a refused request does nothing
        async with act_then_observe(services, options) as observation:
            output = await inner(services, request, *rest)
            shot = await observation.screenshot()
        values = dict(output) if isinstance(output, BaseModel) else {}
        return answer_model.model_validate({**values, "screenshot": shot})

    setattr(observed, _WRAPPED, inner)
    observed.__name__ = getattr(inner, "__name__", "observed")
    return request_model, observed, answer_model


def _derive(
    model: type[BaseModel], name: str, kind: type[BaseModel], help: str, prefix: str = ""
) -> type[BaseModel]:
    """``model`` plus an optional field ``name``; ``prefix`` names the new model apart from its
    base in the document (answers such as Success are shared with other operations)."""
    if name in model.model_fields:
        return model
    fields: dict[str, Any] = {
        name: (kind | None, Field(default=None, exclude_if=lambda v: v is None, description=help))
    }
    derived: type[BaseModel] = create_model(
        prefix + model.__name__, __base__=model, __module__=model.__module__, __doc__=model.__doc__, **fields
    )
    return derived
