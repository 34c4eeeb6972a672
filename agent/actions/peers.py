"""The peers' vocabularies (seeds 000, 001 and 002), declared as operations like ours.

- Their action types that ours lacks are operations of their own (``click_mouse``,
  ``move_mouse``, ``drag_mouse``, ``press_keys``, ``scroll_pixels``), reachable from /actions and
  /batch; their other names for our actions (``keypress``, ``left_click``, ...) are aliases with
  their own type tag, so the OpenAPI document lists every type the server accepts.
- Where a peer uses one of our type names with another meaning (``scroll`` in pixels), its
  clients are told apart by the route they call, which is the peer's own: seed 000's
  ``POST /computer-action`` and ``POST /bash-action``, seed 002's ``POST /execute``. Each of those
  speaks the peer's whole vocabulary, in its units, and answers in its shape.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, RootModel

from agent.actions import screen  # noqa: F401 (declares operations named below: cursor_position, screenshot)
from agent.actions.capabilities import Capability, Conditional
from agent.actions.exec import exec_service
from agent.actions.input import on_screen
from agent.actions.outputs import Output
from agent.actions.registry import REGISTRY, RequestModel
from agent.desktop.backend import Button
from agent.desktop.keys import parse_chord, parse_keys
from agent.errors import InvalidArgument
from agent.exec.runner import CommandSpec, bash_argv
from agent.models.base import Request, Success
from agent.models.exec import DebugRequest
from agent.models.image import ImageResult
from agent.models.peers import (
    BashActionRequest,
    ClickMouseRequest,
    ComputerActionResult,
    DragMouseRequest,
    MoveMouseRequest,
    PeerActionResult,
    PressKeysRequest,
    ScrollPixelsRequest,
    tagged,
)
from agent.services import Services


async def click_mouse(services: Services, req: ClickMouseRequest) -> Success:
    point = await on_screen(services, req.x, req.y)
    if req.click_type == "click":
        await services.desktop.click(point.x, point.y, Button(req.button), req.num_of_clicks, ())
    else:
        await services.desktop.button(point.x, point.y, Button(req.button), down=req.click_type == "down")
    return Success()


async def move_mouse(services: Services, req: MoveMouseRequest) -> Success:
    point = await on_screen(services, req.x, req.y)
    await services.desktop.move(point.x, point.y)
    return Success()


async def drag_mouse(services: Services, req: DragMouseRequest) -> Success:
    start = await on_screen(services, req.start.x, req.start.y, "start")
    end = await on_screen(services, req.end.x, req.end.y, "end")
    await services.desktop.drag(start, end, Button(req.button))
    return Success()


async def press_keys(services: Services, req: PressKeysRequest) -> Success:
    chord = parse_chord(req.keys) if isinstance(req.keys, str) else parse_keys(req.keys)
    if not chord:
        raise InvalidArgument("keys is empty")
    if req.key_action_type == "press":
        await services.desktop.press_chords([chord], reverse_release=True)
    elif req.key_action_type == "down":
        await services.desktop.key_down(chord)
    else:
        await services.desktop.key_up(chord)
    return Success()


async def scroll_pixels(services: Services, req: ScrollPixelsRequest) -> Success:
    point = await on_screen(services, req.x, req.y)
    dx, dy = req.notches()
    await services.desktop.scroll(point.x, point.y, dx, dy)
    return Success()


_PEER_ACTIONS: tuple[tuple[str, RequestModel, Any, str], ...] = (
    ("click_mouse", ClickMouseRequest, click_mouse, "Click, press or release a button (seed 000)"),
    ("move_mouse", MoveMouseRequest, move_mouse, "Move the pointer to (x, y) (seed 000)"),
    ("drag_mouse", DragMouseRequest, drag_mouse, "Drag from start {x, y} to end {x, y} (seed 000)"),
    ("press_keys", PressKeysRequest, press_keys, "Press, hold or release keys together (seed 000)"),
    ("scroll_pixels", ScrollPixelsRequest, scroll_pixels, "Scroll by a distance in pixels (seeds 000, 002)"),
)
for _type, _model, _handler, _summary in _PEER_ACTIONS:
    REGISTRY.add(_type, _model, _handler, summary=_summary, result=Success, uses_input=True, tag="input")

# Other names of our actions, same fields and meaning (seed 002, and what models often emit).
ALIASES: dict[str, str] = {
    "keypress": "key",
    "key_press": "key",
    "mouse_move": "move",
    "left_click": "click",
    "cursor": "cursor_position",
    "get_cursor_position": "cursor_position",
}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


for _alias, _target in ALIASES.items():
    _target_model: Any = REGISTRY.get(_target).model
    REGISTRY.alias(_alias, _target, tagged(_target_model, _alias, f"{_camel(_alias)}Alias"))


def result_data(output: Output) -> dict[str, Any]:
    """An action's result as JSON, as POST /actions gives it (images base64, no ``success``)."""
    if isinstance(output, ImageResult):
        encoded = base64.b64encode(output.data).decode("ascii")
        return {"image": encoded, "format": output.format, "width": output.width, "height": output.height}
    if not isinstance(output, BaseModel):
        raise TypeError(f"{type(output).__name__} cannot be an action result")
    data = output.model_dump(mode="json")
    data.pop("success", None)
    return data


class Vocabulary:
    """A peer's single-action endpoint: its type names, each mapped to one of our operations."""

    def __init__(self, prefix: str, members: dict[str, str]) -> None:
        self.members = members  # the peer's type name -> our operation
        self.operations: dict[type[BaseModel], str] = {}  # each member's model -> its operation
        for name, operation_type in members.items():
            model: Any = REGISTRY.get(operation_type).model
            if name != operation_type:
                model = tagged(model, name, f"{prefix}{_camel(name)}")
            self.operations[model] = operation_type
        union: Any = Annotated[Union[tuple(self.operations)], Field(discriminator="type")]  # noqa: UP007
        self.model: type[RootModel[Any]] = type(prefix, (RootModel[union],), {"__module__": __name__})

    async def run(self, services: Services, request: RootModel[Any]) -> Output:
        """Run the member action; input actions hold the input lock, as on their own routes."""
        action: Request = request.root
        operation = REGISTRY.get(self.operations[type(action)])
        operation.authorize(services.config, action)
        handler: Callable[[Services, Request], Awaitable[Output]] = operation.handler  # type: ignore[assignment]
        if not operation.uses_input:
            return await handler(services, action)
        async with services.input_lock:
            return await handler(services, action)


# Seed 000 (POST /v1/desktop/:id/computer-action): its nine action types; `scroll` is in pixels.
COMPUTER_ACTION = Vocabulary(
    "ComputerAction",
    {
        "click_mouse": "click_mouse",
        "scroll": "scroll_pixels",
        "move_mouse": "move_mouse",
        "drag_mouse": "drag_mouse",
        "type": "type",
        "press_keys": "press_keys",
        "wait": "wait",
        "screenshot": "screenshot",
        "get_cursor_position": "cursor_position",
    },
)

# Seed 002 (POST /computers/{id}/execute): its desktop action types; `scroll`'s dx/dy are pixels.
PEER_EXECUTE = Vocabulary(
    "ExecuteAction",
    {
        "click": "click",
        "double_click": "double_click",
        "right_click": "right_click",
        "drag": "drag",
        "type": "type",
        "keypress": "key",
        "scroll": "scroll_pixels",
        "wait": "wait",
        "screenshot": "screenshot",
        "key_down": "key_down",
        "key_up": "key_up",
        "mouse_down": "mouse_down",
        "mouse_up": "mouse_up",
        "debug": "debug",
    },
)


async def computer_action(services: Services, request: RootModel[Any]) -> ComputerActionResult:
    output = await COMPUTER_ACTION.run(services, request)
    if isinstance(output, ImageResult):
        return ComputerActionResult(base64_image=base64.b64encode(output.data).decode("ascii"))
    data = result_data(output)
    return ComputerActionResult(output=json.dumps(data) if data else None)


async def peer_execute(services: Services, request: RootModel[Any]) -> PeerActionResult:
    output = await PEER_EXECUTE.run(services, request)
    return PeerActionResult(
        result=result_data(output),
        request_id=getattr(request.root, "request_id", None),
        timestamp=datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
    )


async def bash_action(services: Services, req: BashActionRequest) -> ComputerActionResult:
    result = await exec_service(services).run(CommandSpec(argv=bash_argv(req.command)))
    stderr = result.stderr.decode("utf-8", "replace")
    return ComputerActionResult(output=result.stdout.decode("utf-8", "replace"), error=stderr or None)


REGISTRY.add(
    "computer_action",
    COMPUTER_ACTION.model,
    computer_action,
    summary="Run one action in seed 000's vocabulary; answer in its shape",
    description="The action types, fields and units of seed 000's computer-action endpoint: "
    "`scroll`'s `amount` is in pixels (one wheel notch per 100 px), `drag_mouse` takes `start` and "
    "`end` points, `press_keys` takes `keys` and `key_action_type`. The answer is "
    "`{output, error, base64_image}`: a screenshot in `base64_image`, another action's result as "
    "JSON text in `output`. Errors are this agent's error answers.",
    route="/computer-action",
    result=ComputerActionResult,
    tag="peers",
    actions=False,
)
REGISTRY.add(
    "execute",
    PEER_EXECUTE.model,
    peer_execute,
    summary="Run one action in seed 002's vocabulary; answer in its shape",
    description="The desktop action types and fields of seed 002's execute endpoint: `scroll`'s "
    "`dx`/`dy` are pixels (one wheel notch per 100 px), `keypress` takes `keys`, `drag` takes "
    "`x1`..`y2`. The answer is `{status, result, request_id, timestamp}`.",
    route="/execute",
    result=PeerActionResult,
    tag="peers",
    actions=False,
    conditional=Conditional(
        Capability.EXEC,
        lambda request: isinstance(request.root, DebugRequest),
        when="the action is `debug` (runs a command)",
        example={"type": "debug", "debug": {"command": "true"}},
    ),
)
REGISTRY.add(
    "bash_action",
    BashActionRequest,
    bash_action,
    summary="Run a command line with bash; answer in seed 000's shape {output, error}",
    route="/bash-action",
    result=ComputerActionResult,
    tag="peers",
    cancel_on_disconnect=True,
    capability=Capability.EXEC,
)
