"""Accessibility actions: the AT-SPI tree, element search, element actions and clicks.

Thin: validation and shaping here, the work in ``agent.a11y``. The tree is answered as the JSON
object its model documents, built straight from the walk's nodes (which hold checked values):
a model per node cost more than a third of the walk of a 262-node window over HTTP.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny

from agent.a11y import elements, outline, roles
from agent.a11y.node import Node, ScreenRect, WalkOptions, keep_roles
from agent.a11y.service import Accessibility
from agent.actions import space
from agent.actions.capabilities import Capability
from agent.actions.registry import REGISTRY, MiB
from agent.actions.uncover import uncover
from agent.desktop.backend import Button
from agent.errors import AccessibilityDisabled, InvalidArgument
from agent.models.accessibility import BOUNDS_HELP, FoundNode
from agent.models.accessibility import omitted as _omitted
from agent.models.base import ALONG_X, ALONG_Y, AT_X, AT_Y, Request, Result, Success
from agent.services import Services
from agent.x11.window_list import WindowInfo, parse_window_id


def _role_vocabulary(schema: dict[str, Any]) -> None:
    """Publish beside a role filter which AT-SPI roles each ARIA name matches."""
    schema["x-aria-roles"] = roles.aria_vocabulary()


ROLE_FILTER_HELP = (
    "An ARIA / Playwright role name (button, checkbox, textbox, link, menuitem, combobox, tab, ...; "
    "matches every AT-SPI role mapped to it, see aria_role) or an AT-SPI role name ('push button' "
    "or push_button); any case. Known names: " + ", ".join(roles.ARIA_NAMES)
)


class AccessibleNode(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(
        description="Stable for the element's lifetime; use it with /accessibility/action and /click"
    )
    role: str = Field(description="AT-SPI role name, e.g. 'push button', 'menu item', 'text'")
    aria_role: str | None = _omitted(
        enum=list(roles.NODE_ARIA_NAMES),
        description="The ARIA / Playwright name of the role ('push button' is button, 'text' is textbox, "
        "'page tab' is tab); omitted when ARIA has no equivalent (desktop frame, label, scroll pane, ...). "
        "The role filters take it: see x-aria-roles on /desktop/accessibility/find's role",
    )
    name: str
    description: str = ""
    states: list[str] = Field(description="AT-SPI state names, e.g. 'focused', 'checked', 'showing'")
    x: Annotated[int | None, AT_X] = _omitted(description=BOUNDS_HELP)
    y: Annotated[int | None, AT_Y] = _omitted()
    width: Annotated[int | None, ALONG_X] = _omitted()
    height: Annotated[int | None, ALONG_Y] = _omitted()
    value: float | None = Field(default=None, description="Current value (sliders, spin buttons, progress)")
    text: str | None = Field(default=None, description="Text content of text fields, bounded")
    text_truncated: bool | None = None
    actions: list[str] | None = Field(default=None, description="AT-SPI action names (showing elements)")
    pid: int | None = Field(default=None, description="Process id (applications only)")
    children: list[AccessibleNode] = Field(default_factory=list)


class AccessibilityTreeRequest(Request):
    type: Literal["accessibility_tree"] = "accessibility_tree"
    app: str | None = Field(
        default=None, description="Only this application: a name (or part of one) or a pid"
    )
    window: str | None = Field(
        default=None, description="Only this window: an X window id ('0x2200003') or an element id"
    )
    max_depth: int = Field(
        default=64, ge=0, le=256, description="Levels below the desktop (apps are level 1)"
    )
    max_nodes: int = Field(
        default=20000, ge=1, le=200000, description="Node budget; a cut tree says truncated"
    )
    visible_only: bool = Field(
        default=False, description="Only elements showing, on screen and in their viewport"
    )
    roles: list[str] | None = Field(
        default=None,
        description="Keep only these roles (comma-separated). Each is " + ROLE_FILTER_HELP,
        json_schema_extra=_role_vocabulary,
    )
    timeout: float = Field(
        default=5.0, gt=0, le=60, description="Deadline in seconds; a cut tree says truncated"
    )
    format: Literal["json", "text"] = Field(default="json", description="text: a compact outline for LLMs")
    details: bool = Field(default=True, description="Also fetch actions, values and text (extra calls)")


class AccessibilityTree(Result):
    # The agent fills ``tree`` with the JSON object of an AccessibleNode (``tree_json``), which is
    # serialised as it is (SerializeAsAny); a client reading the answer gets AccessibleNode models.
    tree: SerializeAsAny[AccessibleNode] | None = Field(
        default=None,
        description="The root (format=json): the desktop; with app= the application (the desktop "
        "when several match); with window= that window's application",
    )
    text: str | None = Field(default=None, description="The outline (format=text)")
    truncated: bool = Field(description="True when the deadline, node budget or depth cut the tree")
    node_count: int
    elapsed_ms: float
    unresponsive: list[str] = Field(
        default_factory=list, description="Applications that did not answer in time"
    )


class FindRequest(Request):
    type: Literal["accessibility_find"] = "accessibility_find"
    role: str | None = Field(default=None, description=ROLE_FILTER_HELP, json_schema_extra=_role_vocabulary)
    name: str | None = Field(default=None, description="Exact accessible name")
    name_contains: str | None = Field(default=None, description="Case-insensitive part of the name")
    states: list[str] | None = Field(
        default=None, description="States that must all be set (comma-separated)"
    )
    app: str | None = Field(default=None, description="Application name or pid")
    visible_only: bool = False
    max_results: int = Field(default=100, ge=1, le=10000)
    timeout: float = Field(default=5.0, gt=0, le=60)


class FindResult(Result):
    nodes: list[FoundNode]
    truncated: bool = Field(default=False, description="The search was cut by its deadline")


class ElementActionRequest(Request):
    type: Literal["accessibility_action"] = "accessibility_action"
    id: str = Field(description="Element id from the tree or /find")
    action: str = Field(
        description="An AT-SPI action name (click/press/activate stand in for each other), "
        "'focus', 'set_value' or 'set_text'"
    )
    value: str | float | None = Field(default=None, description="For set_value / set_text")


class ElementClickRequest(Request):
    type: Literal["accessibility_click"] = "accessibility_click"
    id: str = Field(description="Element id from the tree or /find")
    button: Literal["left", "right", "middle"] = "left"


class ElementClicked(Result):
    success: Literal[True] = True
    x: Annotated[int, AT_X]
    y: Annotated[int, AT_Y]
    raised: str | None = Field(
        default=None,
        description="The element's window, brought to the front first because another window covered the element",
    )


def _service(services: Services) -> Accessibility:
    if services.accessibility is None:
        raise AccessibilityDisabled("accessibility is turned off in this agent (--accessibility)")
    return services.accessibility


def tree_json(node: Node) -> dict[str, Any]:
    """The node and its descendants as the JSON object ``AccessibleNode`` documents, key for key.

    Built from the walk's checked values without a model per node (filling a model and
    serialising it cost ~5 us a node, this ~1 us; the OpenAPI snapshot and tests/a11y hold the
    shape). Unknown aria_role and bounds are left out; the other unknown values are null.
    """
    role = node.role
    out: dict[str, Any] = {"id": node.id, "role": roles.role_name(role)}
    aria_role = roles.aria_role(role)
    if aria_role is not None:
        out["aria_role"] = aria_role
    out["name"] = node.name
    out["description"] = node.description
    out["states"] = node.states
    box = node.extents
    if box is not None:
        out["x"] = box.x
        out["y"] = box.y
        out["width"] = box.width
        out["height"] = box.height
    value = node.value
    out["value"] = None if value is None else float(value)
    out["text"] = node.text
    out["text_truncated"] = True if node.text_truncated else None
    actions = node.actions
    out["actions"] = None if actions is None else list(actions)
    out["pid"] = node.pid
    out["children"] = [tree_json(child) for child in node.children]
    return out


def _tree_answer(root: Node) -> Any:
    """The ``tree`` of the answer: its JSON object, or under a caller's coordinate space its
    models, whose bounds ``agent.actions.space`` maps to that space like any other answer's."""
    data = tree_json(root)
    return data if space.current_fit() is None else AccessibleNode.model_validate(data)


async def accessibility_tree(services: Services, req: AccessibilityTreeRequest) -> AccessibilityTree:
    service = _service(services)
    wanted = elements.parse_roles(req.roles) if req.roles else None
    options = WalkOptions(
        max_depth=req.max_depth,
        max_nodes=req.max_nodes,
        visible_only=req.visible_only,
        timeout=req.timeout,
        details=req.details,
    )
    size = await services.desktop.screen_size()
    screen = ScreenRect(0, 0, size.width, size.height)
    app, element, title = req.app, None, None
    if req.window is not None:
        if ":" in req.window:  # an element id
            element = req.window
        else:
            window = await _window(services, req.window)
            app, title = (str(window.pid) if window.pid else app), window.title
    result = await service.tree(options, app=app, element=element, window_title=title, screen=screen)
    node_count = result.node_count if wanted is None else keep_roles(result.root, wanted)
    if req.format == "text":
        return AccessibilityTree(
            text=outline.render(result),
            truncated=result.truncated,
            node_count=node_count,
            elapsed_ms=result.elapsed_ms,
            unresponsive=list(result.unresponsive),
        )
    return AccessibilityTree.model_construct(  # every field set here: no defaults to fill
        tree=_tree_answer(result.root),
        text=None,
        truncated=result.truncated,
        node_count=node_count,
        elapsed_ms=result.elapsed_ms,
        unresponsive=list(result.unresponsive),
    )


async def _window(services: Services, window_id: str) -> WindowInfo:
    if services.windows is None:
        raise InvalidArgument("window: X window ids need the window service; pass an element id instead")
    return await services.windows.get(parse_window_id(window_id))


async def accessibility_find(services: Services, req: FindRequest) -> FindResult:
    query = elements.Query(
        role=req.role,
        name=req.name,
        name_contains=req.name_contains,
        states=tuple(req.states or ()),
        app=req.app,
        max_results=req.max_results,
        visible_only=req.visible_only,
        timeout=req.timeout,
    )
    nodes, truncated = await elements.find(_service(services), query)
    return FindResult(nodes=[FoundNode.model_validate(node) for node in nodes], truncated=truncated)


async def accessibility_action(services: Services, req: ElementActionRequest) -> Success:
    await elements.act(_service(services), req.id, req.action, req.value)
    return Success()


async def accessibility_click(services: Services, req: ElementClickRequest) -> ElementClicked:
    box = await elements.extents(_service(services), req.id)
    size = await services.desktop.screen_size()
    visible = box.clip(ScreenRect(0, 0, size.width, size.height))
    if visible is None:
        raise InvalidArgument(f"the element {req.id} lies outside the screen", details={"id": req.id})
    # The element's centre, or the centre of its part on screen when the centre is off it.
    x, y = box.center if visible == box else visible.center
    raised = None
    if services.windows is not None:
        raised = await uncover(_service(services), services.windows, req.id, x, y)
    await services.desktop.click(x, y, Button(req.button), 1, ())
    return ElementClicked(x=x, y=y, raised=raised)


REGISTRY.add(
    "accessibility_tree",
    AccessibilityTreeRequest,
    accessibility_tree,
    route="/desktop/accessibility-tree",
    method="GET",
    result=AccessibilityTree,
    tag="accessibility",
    capability=Capability.ACCESSIBILITY,
    summary="The AT-SPI tree: desktop, applications, their elements with ids, roles, states and bounds",
)
REGISTRY.add(
    "accessibility_find",
    FindRequest,
    accessibility_find,
    route="/desktop/accessibility/find",
    method="GET",
    result=FindResult,
    tag="accessibility",
    capability=Capability.ACCESSIBILITY,
    summary="Elements by role, name, part of the name, states and application, with their centres",
)
REGISTRY.add(
    "accessibility_action",
    ElementActionRequest,
    accessibility_action,
    route="/desktop/accessibility/action",
    result=Success,
    max_body=1 * MiB,  # set_text / set_value
    tag="accessibility",
    capability=Capability.ACCESSIBILITY,
    summary="Perform an element's AT-SPI action, focus it, or set its value or text",
)
REGISTRY.add(
    "accessibility_click",
    ElementClickRequest,
    accessibility_click,
    route="/desktop/accessibility/click",
    result=ElementClicked,
    uses_input=True,
    tag="accessibility",
    capability=Capability.ACCESSIBILITY,
    summary="Click the centre of an element through the input backend, first raising its window if another covers it",
)
