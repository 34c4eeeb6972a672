"""Finding elements and acting on them by id.

Actions go to the element's own application over its connection: an AT-SPI action by name
(``click``, ``press``, ``activate``, ... with those three standing in for one another, since
toolkits pick different words for "do the default thing"), ``focus``, ``set_value`` and
``set_text``. A stale id (the object or its application is gone) is a 404 (``NotFound``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from dbus_fast import Variant

from agent.a11y import roles
from agent.a11y.dbus import Call, Connection
from agent.a11y.node import (
    ACCESSIBLE,
    ACTION,
    COMPONENT,
    DESKTOP_ID,
    EDITABLE_TEXT,
    NULL_PATH,
    PROPERTIES,
    ROOT_PATH,
    VALUE,
    Node,
    ScreenRect,
    WalkOptions,
)
from agent.a11y.service import Accessibility
from agent.errors import AgentError, ElementStateConflict, InvalidArgument, NotFound

LOG = logging.getLogger(__name__)

DEFAULT_ACTIONS = ("click", "press", "activate", "jump", "toggle", "open")
ACTION_TIMEOUT = 5.0
MAX_ANCESTORS = 64  # a parent chain longer than this is treated as reaching the window


@dataclass(frozen=True, slots=True)
class Query:
    """What /find matches: every given criterion must hold."""

    role: str | None = None
    name: str | None = None
    name_contains: str | None = None
    states: tuple[str, ...] = ()
    app: str | None = None
    max_results: int = 100
    visible_only: bool = False
    timeout: float = 5.0


def parse_roles(names: list[str]) -> frozenset[int]:
    """The AT-SPI roles that role filter names (ARIA or AT-SPI) match; a 400 names the unknown ones."""
    wanted: set[int] = set()
    unknown = []
    for name in names:
        try:
            wanted |= roles.parse_role(name)
        except KeyError:
            unknown.append(name)
    if unknown:
        raise InvalidArgument(
            f"unknown role(s): {', '.join(map(repr, unknown))}", details={"known_roles": roles.known_roles()}
        )
    return frozenset(wanted)


async def find(service: Accessibility, query: Query) -> tuple[list[Node], bool]:
    """Matching nodes in document order, and whether the search was cut by its deadline/budget."""
    wanted_roles = parse_roles([query.role]) if query.role else None
    try:
        wanted_states = roles.parse_state_names(list(query.states))
    except KeyError as exc:
        raise InvalidArgument(
            f"unknown state {exc.args[0]!r}", details={"known_states": list(roles.STATE_NAMES)}
        ) from None
    contains = query.name_contains.lower() if query.name_contains else None

    def matches(node: Node) -> bool:
        return (
            (wanted_roles is None or node.role in wanted_roles)
            and (query.name is None or node.name == query.name)
            and (contains is None or contains in node.name.lower())
            and all(node.has_state(number) for number in wanted_states)
        )

    # Positions are fetched for the matches only: a search costs a walk without extents.
    options = WalkOptions(
        visible_only=query.visible_only, timeout=query.timeout, details=False, positions_for=matches
    )
    result = await service.tree(options, app=query.app)
    found = [node for node in result.root.iter() if node.ref.path != DESKTOP_ID and matches(node)]
    return found[: query.max_results], result.truncated


async def act(service: Accessibility, element_id: str, action: str, value: str | float | None) -> None:
    """Perform ``action`` on the element; raise NotFound (stale), InvalidArgument or Conflict."""
    verb = action.strip().lower()
    if verb in ("set_text", "set_value") and value is None:
        raise InvalidArgument(
            f"{verb} needs a value (an empty string clears a text)",
            details={"id": element_id, "action": verb},
        )
    deadline = asyncio.get_running_loop().time() + ACTION_TIMEOUT
    conn, ref = await service.element(element_id, deadline)
    interfaces = set((await conn.call(Call(ref.path, ACCESSIBLE, "GetInterfaces"), deadline))[0])
    if verb == "focus":
        _need(interfaces, COMPONENT, element_id, verb)
        ok = (await conn.call(Call(ref.path, COMPONENT, "GrabFocus"), deadline))[0]
    elif verb == "set_text":
        _need(interfaces, EDITABLE_TEXT, element_id, verb)
        ok = await _set_text(conn, ref.path, str(value), deadline)
    elif verb == "set_value":
        if VALUE in interfaces:
            number = _number(value)
            await conn.call(
                Call(ref.path, PROPERTIES, "Set", "ssv", (VALUE, "CurrentValue", _variant(number))), deadline
            )
            ok = True
        elif EDITABLE_TEXT in interfaces:
            ok = await _set_text(conn, ref.path, str(value), deadline)
        else:
            raise InvalidArgument(
                f"element {element_id} has neither a Value nor an editable text interface",
                details={"id": element_id, "action": verb},
            )
    else:
        _need(interfaces, ACTION, element_id, verb)
        names = [name for name, _, _ in (await conn.call(Call(ref.path, ACTION, "GetActions"), deadline))[0]]
        index = _action_index(names, verb)
        if index is None:
            raise InvalidArgument(
                f"element {element_id} has no action {action!r}",
                details={"id": element_id, "actions": names},
            )
        ok = (await conn.call(Call(ref.path, ACTION, "DoAction", "i", (index,)), deadline))[0]
    if not ok:
        raise ElementStateConflict(
            f"the element {element_id} refused {verb!r}", details={"id": element_id, "action": verb}
        )


async def extents(service: Accessibility, element_id: str) -> ScreenRect:
    """Where the element is on screen now; Conflict when it is not showing."""
    deadline = asyncio.get_running_loop().time() + ACTION_TIMEOUT
    conn, ref = await service.element(element_id, deadline)
    states = (await conn.call(Call(ref.path, ACCESSIBLE, "GetState"), deadline))[0]
    box = ScreenRect(*(await conn.call(Call(ref.path, COMPONENT, "GetExtents", "u", (0,)), deadline))[0])
    if not roles.has_state(states, roles.STATE_SHOWING) or box.width <= 0 or box.height <= 0:
        raise ElementStateConflict(
            f"the element {element_id} is not on screen",
            details={"id": element_id, "states": roles.state_names(states)},
        )
    return box


@dataclass(frozen=True, slots=True)
class Toplevel:
    """The window-level ancestor of an element (a frame or dialog), as the X side can match it."""

    pid: int | None  # the application's process
    name: str  # the window's accessible name, which toolkits set to its title
    extents: ScreenRect | None  # where toolkits put the window: its frame, decorations included


async def toplevel(service: Accessibility, element_id: str) -> Toplevel:
    """Climb from the element to the child of its application root; 404 when it is gone.

    What cannot be read (an application that refuses a property, an odd answer, a parent in
    another application such as an embedding socket) leaves the window unknown: no name, no
    extents, so that the caller goes by what it knows."""
    deadline = asyncio.get_running_loop().time() + ACTION_TIMEOUT
    conn, ref = await service.element(element_id, deadline)
    pid = await service.app_pid(ref.bus, deadline)
    unknown = Toplevel(pid=pid, name="", extents=None)
    path = ref.path
    try:
        for _ in range(MAX_ANCESTORS):
            answer = await conn.call(Call(path, PROPERTIES, "Get", "ss", (ACCESSIBLE, "Parent")), deadline)
            bus, parent_path = (str(part) for part in answer[0].value)
            if parent_path in (ROOT_PATH, NULL_PATH):
                break
            if bus and bus != ref.bus:
                return unknown
            path = parent_path
    except NotFound:
        raise
    except (AgentError, TypeError, ValueError, AttributeError, IndexError) as exc:
        LOG.info("could not climb from %s to its window: %s", element_id, exc)
        return unknown
    (name, box), _ = await conn.batch(
        [
            Call(path, PROPERTIES, "Get", "ss", (ACCESSIBLE, "Name")),
            Call(path, COMPONENT, "GetExtents", "u", (0,)),
        ],
        deadline,
    )
    return Toplevel(
        pid=pid,
        name=str(name[0].value) if isinstance(name, list) else "",
        extents=ScreenRect(*box[0]) if isinstance(box, list) else None,
    )


async def _set_text(conn: Connection, path: str, text: str, deadline: float) -> bool:
    """Replace an editable text's contents; whether the toolkit accepted it."""
    return bool((await conn.call(Call(path, EDITABLE_TEXT, "SetTextContents", "s", (text,)), deadline))[0])


def _action_index(names: list[str], verb: str) -> int | None:
    lowered = [name.lower() for name in names]
    if verb in lowered:
        return lowered.index(verb)
    if verb in DEFAULT_ACTIONS:  # the toolkit's word for the default action
        for index, name in enumerate(lowered):
            if name in DEFAULT_ACTIONS:
                return index
    return None


def _need(interfaces: set[str], interface: str, element_id: str, verb: str) -> None:
    if interface not in interfaces:
        short = interface.rsplit(".", 1)[-1]
        raise InvalidArgument(
            f"element {element_id} does not support {verb!r} (no {short} interface)",
            details={"id": element_id, "action": verb},
        )


def _number(value: str | float | None) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgument(f"set_value needs a number, got {value!r}") from None


def _variant(number: float) -> Variant:
    return Variant("d", number)
