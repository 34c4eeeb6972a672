"""Running an operation in a caller's coordinate space (X-Coordinate-Space, issue 15).

Every operation runs through ``run``: when the request declared a space (``use``), the fields
its models mark with ``ScreenAxis`` are mapped from the space to the screen before the handler
runs, and those of its answer back to the space afterwards, however deeply nested (a window
list, an accessibility tree). Captures read ``current_fit`` to draw the screen at the space's
size. Handlers themselves only ever see screen pixels.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from agent.actions.outputs import ByteBody, Output
from agent.desktop.space import HEADER, CoordinateSpace, Fit, SpaceError
from agent.errors import InvalidArgument
from agent.models.base import ScreenAxis

if TYPE_CHECKING:
    from agent.actions.registry import Operation
    from agent.services import Services

ModelT = TypeVar("ModelT", bound=BaseModel)

_SPACE: ContextVar[CoordinateSpace | None] = ContextVar("coordinate_space", default=None)
_FIT: ContextVar[Fit | None] = ContextVar("coordinate_fit", default=None)


@contextlib.contextmanager
def use(space: CoordinateSpace | None) -> Iterator[None]:
    """Declare the caller's space for the operations run inside (one HTTP request)."""
    token = _SPACE.set(space)
    try:
        yield
    finally:
        _SPACE.reset(token)


def current_space() -> CoordinateSpace | None:
    return _SPACE.get()


def current_fit() -> Fit | None:
    """How the screen sits in the caller's space, while an operation runs under one."""
    return _FIT.get()


async def run(
    services: Services, operation: Operation, request: BaseModel, body: ByteBody | None = None
) -> Output:
    """Run ``operation`` (``Operation.run``), its coordinates mapped through the caller's space if any."""
    space = _SPACE.get()
    if space is None:
        return await operation.run(services, request, body)
    fit = _FIT.get()
    if fit is None or fit.space != space:
        size = await services.desktop.screen_size()
        fit = space.fit(size.width, size.height)
    token = _FIT.set(fit)
    try:
        mapped = to_screen(request, fit)
        output = await operation.run(services, mapped, body)
    finally:
        _FIT.reset(token)
    return to_space(output, fit) if isinstance(output, BaseModel) else output


def refuse_sizing(request: BaseModel) -> None:
    """Under a coordinate space the image is the space's size: a 400 naming the sizing options
    (scale, max_width, max_height) the request also gives."""
    fit = _FIT.get()
    if fit is None:
        return
    sized_by = [
        name for name in ("scale", "max_width", "max_height") if getattr(request, name, None) is not None
    ]
    if sized_by:
        raise InvalidArgument(
            f"{', '.join(sized_by)}: the image size is the coordinate space's ({fit.space}); "
            f"leave these out when {HEADER} is given",
            details={"fields": sized_by, "coordinate_space": str(fit.space)},
        )


async def screen_request(services: Services, request: ModelT) -> ModelT:
    """``request`` with its coordinates mapped to the screen, as ``run`` would map them (the
    same without a space): checks points before any of a sequence is acted on."""
    space = _SPACE.get()
    if space is None:
        return request
    fit = _FIT.get()
    if fit is None or fit.space != space:
        size = await services.desktop.screen_size()
        fit = space.fit(size.width, size.height)
    return to_screen(request, fit)


def capture_sizing() -> dict[str, tuple[int, ...]]:
    """The CaptureOptions fields (size, canvas) that draw the whole screen in the caller's space:
    the picture scaled to fit, centred on black; nothing without a space."""
    fit = _FIT.get()
    if fit is None:
        return {}
    return {
        "size": (fit.picture_width, fit.picture_height),
        "canvas": (fit.space.width, fit.space.height, fit.left, fit.top),
    }


def _axis(info: FieldInfo) -> ScreenAxis | None:
    return next((item for item in info.metadata if isinstance(item, ScreenAxis)), None)


def to_screen(model: ModelT, fit: Fit, path: str = "") -> ModelT:
    """``model`` with its marked fields mapped from the space to the screen; a position off the
    space's picture is a 400 naming the field."""

    def convert(name: str, marker: ScreenAxis, value: int) -> int:
        if marker.extent:
            return fit.extent_to_screen(marker.axis, value)
        try:
            return fit.to_screen(marker.axis, value)
        except SpaceError as exc:
            raise InvalidArgument(
                f"{name}: {exc}", details={"field": name, "coordinate_space": str(fit.space)}
            ) from None

    return _walk(model, convert, path)


def to_space(model: ModelT, fit: Fit) -> ModelT:
    """``model`` with its marked fields mapped from the screen to the space."""

    def convert(name: str, marker: ScreenAxis, value: int) -> int:
        if marker.extent:
            return fit.extent_to_space(marker.axis, value)
        return fit.to_space(marker.axis, value)

    return _walk(model, convert, "")


def _walk(model: ModelT, convert: Any, path: str) -> ModelT:
    updates: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name, None)
        where = f"{path}{info.alias or name}"
        marker = _axis(info)
        if marker is not None:
            if isinstance(value, int) and not isinstance(value, bool):
                updates[name] = convert(where, marker, value)
        elif isinstance(value, BaseModel):
            mapped = _walk(value, convert, f"{where}.")
            if mapped is not value:
                updates[name] = mapped
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            updates[name] = [_walk(item, convert, f"{where}[{index}].") for index, item in enumerate(value)]
    return model.model_copy(update=updates) if updates else model
