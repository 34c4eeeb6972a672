"""The values the accessibility service hands out: nodes, walk options, element ids."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agent.a11y import roles
from agent.errors import ElementNotFound

ACCESSIBLE = "org.a11y.atspi.Accessible"
COMPONENT = "org.a11y.atspi.Component"
ACTION = "org.a11y.atspi.Action"
VALUE = "org.a11y.atspi.Value"
TEXT = "org.a11y.atspi.Text"
EDITABLE_TEXT = "org.a11y.atspi.EditableText"
PROPERTIES = "org.freedesktop.DBus.Properties"
ROOT_PATH = "/org/a11y/atspi/accessible/root"
NULL_PATH = "/org/a11y/atspi/null"
CACHE_PATH = "/org/a11y/atspi/cache"
PATH_PREFIX = "/org/a11y/atspi/accessible/"
DESKTOP_ID = "desktop"


@dataclass(frozen=True, slots=True)
class Ref:
    """An accessible object on the accessibility bus: the owner's unique name and its path."""

    bus: str
    path: str

    @property
    def id(self) -> str:
        """Stable for the object's lifetime: both parts are, and neither is ever reused by GTK/Qt."""
        suffix = self.path[len(PATH_PREFIX) :] if self.path.startswith(PATH_PREFIX) else self.path
        return f"{self.bus.removeprefix(':')}:{suffix}"

    @classmethod
    def parse(cls, element_id: str) -> Ref:
        bus, sep, suffix = element_id.partition(":")
        if not sep or not bus or not suffix or not bus.replace(".", "").isdigit():
            raise ElementNotFound(
                f"no accessible element has the id {element_id!r}", details={"id": element_id}
            )
        path = suffix if suffix.startswith("/") else PATH_PREFIX + suffix
        return cls(":" + bus, path)


@dataclass(frozen=True, slots=True)
class ScreenRect:
    """A rectangle in screen pixels: an element's extents (AT-SPI ``GetExtents``), the screen."""

    x: int
    y: int
    width: int
    height: int

    @property
    def center(self) -> tuple[int, int]:
        return self.x + self.width // 2, self.y + self.height // 2

    def clip(self, other: ScreenRect) -> ScreenRect | None:
        """The part of this box inside ``other`` (None when they do not overlap)."""
        left, top = max(self.x, other.x), max(self.y, other.y)
        right = min(self.x + self.width, other.x + other.width)
        bottom = min(self.y + self.height, other.y + other.height)
        if right <= left or bottom <= top:
            return None
        return ScreenRect(left, top, right - left, bottom - top)

    def intersects(self, other: ScreenRect) -> bool:
        return (
            self.x < other.x + other.width
            and other.x < self.x + self.width
            and self.y < other.y + other.height
            and other.y < self.y + self.height
        )


@dataclass(slots=True)
class Node:
    """One accessible object. Mutable only while the walk fills it in; read-only afterwards."""

    ref: Ref
    role: int
    name: str
    description: str
    state_words: tuple[int, ...]
    interfaces: frozenset[str]
    child_count: int
    index: int = -1
    depth: int = 0
    extents: ScreenRect | None = None
    actions: tuple[str, ...] | None = None
    value: float | None = None
    text: str | None = None
    text_truncated: bool = False
    pid: int | None = None  # applications only
    children: list[Node] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.ref.id

    @property
    def role_name(self) -> str:
        return roles.role_name(self.role)

    @property
    def aria_role(self) -> str | None:
        return roles.aria_role(self.role)

    @property
    def states(self) -> list[str]:
        return roles.state_names(self.state_words)

    def has_state(self, number: int) -> bool:
        words = self.state_words
        return (number >> 5) < len(words) and bool(words[number >> 5] >> (number & 31) & 1)

    @property
    def showing(self) -> bool:
        return roles.is_showing(self.state_words)

    def iter(self) -> list[Node]:
        """This node and its descendants, depth first, in document order."""
        out: list[Node] = []
        stack = [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


@dataclass(frozen=True, slots=True)
class WalkOptions:
    max_depth: int = 64
    max_nodes: int = 20000
    visible_only: bool = False
    timeout: float = 5.0
    text_limit: int = 2000
    details: bool = True  # actions, value and text besides role, name, states and position
    # Only these nodes need a position (a search); None: every showing node. Ignored with
    # visible_only, which needs every position to prune what is scrolled away.
    positions_for: Callable[[Node], bool] | None = None


@dataclass(frozen=True, slots=True)
class TreeResult:
    root: Node
    truncated: bool
    node_count: int
    elapsed_ms: float
    unresponsive: tuple[str, ...] = ()  # application ids that did not answer in time


@dataclass
class Budget:
    """The node budget shared by every application of one walk."""

    limit: int
    used: int = 0
    cut: bool = False

    def take(self) -> bool:
        if self.used >= self.limit:
            self.cut = True
            return False
        self.used += 1
        return True

    def give_back(self) -> None:
        self.used -= 1


@dataclass(frozen=True, slots=True)
class Scope:
    """What bounds one walk: options, the shared budget, the deadline (loop time), the screen."""

    options: WalkOptions
    budget: Budget
    deadline: float
    screen: ScreenRect | None = None
    window_title: str | None = None  # keep only the application's top-level with this name


def keep_roles(root: Node, wanted: frozenset[int]) -> int:
    """Drop nodes whose role is not wanted, lifting their kept descendants; return nodes kept.

    The root (desktop, application or element) and the applications always stay, so the answer
    keeps its shape.
    """

    def kept(node: Node) -> list[Node]:
        children = [grandchild for child in node.children for grandchild in kept(child)]
        if node.role in wanted or node.depth <= 1 or node.ref.path == DESKTOP_ID:
            node.children = children
            return [node]
        return children

    root.children = [node for child in root.children for node in kept(child)]
    return len(root.iter())
