"""Walking one application's accessible tree in a handful of pipelined rounds.

Why this shape: pyatspi asks for every property of every node in its own blocking round trip.
Here one ``Cache.GetItems`` call returns role, name, description, states, interfaces and child
count of every object the toolkit bridge has registered, and the walk then goes level by level,
asking only for what the cache cannot answer, with all calls of a level in flight at once:

* a node whose cached children match its live child count (with indexes 0..n-1) is expanded
  from the cache; any other node (the cache skips children of MANAGES_DESCENDANTS containers,
  menus report -1, some widgets are created lazily) is expanded with ``GetChildren``, asked for
  every such cached node in one round right after ``GetItems``, and its unknown children are
  fetched with four calls each (three for rows of long lists);
* large MANAGES_DESCENDANTS containers (a file list of thousands of cells) are probed with
  ``GetAccessibleAtPoint`` first, so the rows on screen come first: with ``visible_only`` only
  those are fetched, otherwise they are what a node budget or deadline keeps;
* positions, actions, values and text are fetched for the nodes that are showing, those of
  cached nodes at once, alongside the expansion. Hidden nodes keep role, name, description and
  states; their toolkit reports no real position.

Every round stops at the walk's deadline and every node counts against a shared budget; what
was cut is reported, never silently dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from agent.a11y import roles
from agent.a11y.cache import CacheIndex, CacheItem
from agent.a11y.dbus import Call, Connection, Outcome
from agent.a11y.details import fetch_details, prune_offscreen
from agent.a11y.lists import Entry, managed_children
from agent.a11y.node import (
    ACCESSIBLE,
    ACTION,
    CACHE_PATH,
    COMPONENT,
    NULL_PATH,
    PROPERTIES,
    ROOT_PATH,
    Node,
    Ref,
    Scope,
)
from agent.a11y.replay import REPLAY_LIMIT, Ahead, Replays

ASSUMED_INTERFACES = (COMPONENT, ACTION)  # for rows of long lists, whose interfaces are not asked


class _Pending(NamedTuple):
    """A child the cache does not know, to be fetched for its parent."""

    parent: Node
    ref: Ref
    index_in_parent: int
    hidden: bool  # scrolled out of its MANAGES_DESCENDANTS container


@dataclass(slots=True)
class _Level:
    """What expanding one level produced: the next level, and the children still to fetch."""

    next: list[Node] = field(default_factory=list)
    to_fetch: list[_Pending] = field(default_factory=list)


class AppWalk:
    """One walk of one application: a connection, the options, the shared budget and deadline."""

    def __init__(self, conn: Connection, app: Ref, scope: Scope, replays: Replays | None = None) -> None:
        self.conn = conn
        self.app = app
        self.options = scope.options
        self.budget = scope.budget
        self.deadline = scope.deadline
        self.screen = scope.screen
        self.window_title = scope.window_title
        self.truncated = False
        self.cache = CacheIndex()
        self.nodes: dict[str, Node] = {}  # one Node per cached object, filled in place
        self.seen: set[str] = set()  # paths already placed in the tree (guards against cycles)
        self.detailed: set[str] = set()
        self.offscreen: set[str] = set()  # scrolled out of a MANAGES_DESCENDANTS container
        self.managed: set[str] = set()  # descendants of MANAGES_DESCENDANTS containers
        self.prefetch: asyncio.Future[dict[str, list[Ref]]] | None = None
        self.replays = replays
        self.asked: list[Call] = []  # every call of this walk, in order, for the next one
        self.ahead: Ahead | None = None

    @property
    def shape(self) -> Hashable:
        """What makes two walks ask the same calls: the subtree, the options, the window."""
        options = replace(self.options, timeout=0.0, positions_for=None)
        return (self.app.path, options, self.options.positions_for is None, self.window_title, self.screen)

    async def _batch(self, calls: list[Call]) -> list[Outcome]:
        if len(self.asked) < REPLAY_LIMIT:
            self.asked += calls
        if self.ahead is None:
            return await self._send(calls)
        results, complete = await self.ahead.answer(calls, self._send, self.deadline)
        if not complete:
            self.truncated = True
        return results

    async def _send(self, calls: list[Call]) -> list[Outcome]:
        results, complete = await self.conn.batch(calls, self.deadline)
        if not complete:
            self.truncated = True
        return results

    async def run(self, base_depth: int) -> Node | None:
        """Walk from the application's root; None if it did not even answer the first call."""
        foreseen = self.replays.get(self.shape) if self.replays is not None and not self.conn.stalled else ()
        if foreseen:
            self.ahead = Ahead(self.conn, foreseen, self.deadline)
        try:
            root = await self._run(base_depth)
        finally:
            if self.ahead is not None:
                self.ahead.stop()
        if root is not None and self.replays is not None:
            self.replays.put(self.shape, self.asked)
        return root

    async def _run(self, base_depth: int) -> Node | None:
        (items,) = await self._batch([Call(CACHE_PATH, "org.a11y.atspi.Cache", "GetItems")])
        if items is None:
            return None
        if isinstance(items, list):
            self.cache = CacheIndex(items[0])
        root = self._from_cache(self.app.path, base_depth)
        if root is None:
            root = (await self._fetch_nodes([(self.app, False)], base_depth))[0]
        if root is None:
            return None
        self.seen.add(root.ref.path)
        early = self._ask_early()
        frontier = [root]
        if self.window_title is not None and not self.truncated:
            frontier = self._only_window(root, await self._expand_level(frontier))
        while frontier and not self.truncated:
            frontier = await self._expand_level(frontier)
        if early is not None:
            await early
        await self._details([n for n in root.iter() if n.showing])
        if self.options.visible_only:
            prune_offscreen(root, self.screen)
        return root

    def _ask_early(self) -> asyncio.Future[None] | None:
        """Ask at once what the cache already tells the walk will need, so the application
        answers while the walk goes on (a few rounds instead of one a level): the details of the
        cached nodes that are showing, and the children of cached nodes whose cached children
        are incomplete (``self.prefetch``). Only for a whole application (not one element's
        subtree) whose cache fits the node budget and depth. Returns the details' future.
        """
        whole_app = self.app.path == ROOT_PATH
        if not (
            whole_app
            and len(self.cache) <= 2 * (self.budget.limit - self.budget.used)
            and self.options.max_depth >= 16
        ):
            return None
        showing = [
            self._node(path) for path, item in self.cache.by_path.items() if roles.is_showing(item.states)
        ]
        early = asyncio.ensure_future(self._details(showing))
        incomplete = [
            self._node(path)
            for path, item in self.cache.by_path.items()
            if self._children_incomplete(path, item)
        ]
        self.prefetch = asyncio.ensure_future(self._get_children(incomplete))
        return early

    def _children_incomplete(self, path: str, item: CacheItem) -> bool:
        """A cached node the walk will expand whose cached children do not match its child count
        (large MANAGES_DESCENDANTS containers are left to ``managed_children``)."""
        if item.child_count == 0 or roles.has_state(item.states, roles.STATE_MANAGES_DESCENDANTS):
            return False
        wanted = (
            roles.is_showing(item.states)
            or not self.options.visible_only
            or item.role == roles.ROLE_APPLICATION
        )
        return wanted and self.cache.children_of(path, item.child_count) is None

    def _only_window(self, root: Node, windows: list[Node]) -> list[Node]:
        """Keep the top-level named like the X window (all of them if none is)."""
        matching = [node for node in windows if node.name == self.window_title]
        if not matching:
            return windows
        for _ in range(len(windows) - len(matching)):
            self.budget.give_back()
        root.children = matching
        return matching

    # -- the cache --------------------------------------------------------------------------
    def _node(self, path: str) -> Node:
        """The node of a cached object (made on first use)."""
        node = self.nodes.get(path)
        if node is None:
            item = self.cache.by_path[path]
            node = self.nodes[path] = Node(
                Ref(self.app.bus, path),
                item.role,
                item.name,
                item.description,
                tuple(item.states),
                frozenset(item.interfaces),
                item.child_count,
                item.index_in_parent,
            )
        return node

    def _from_cache(self, path: str, depth: int) -> Node | None:
        """The cached object's node at this depth; None when the cache does not hold it."""
        if path not in self.cache.by_path:
            return None
        return self._node_at(path, depth)

    def _node_at(self, path: str, depth: int) -> Node:
        node = self._node(path)
        node.depth = depth
        return node

    def _children_from_cache(self, node: Node) -> list[CacheItem] | None:
        return self.cache.children_of(node.ref.path, node.child_count)

    # -- expansion --------------------------------------------------------------------------
    def _wants_children(self, node: Node) -> bool:
        if node.child_count == 0 or node.depth + 1 > self.options.max_depth:
            return False
        if self.options.visible_only and node.role != roles.ROLE_APPLICATION:
            return node.showing
        return True

    def _keep(self, node: Node) -> bool:
        if self.options.visible_only and node.role != roles.ROLE_APPLICATION:
            return node.showing
        return not node.has_state(roles.STATE_DEFUNCT)

    async def _expand_level(self, frontier: list[Node]) -> list[Node]:
        """Attach the children of one level of the tree; the next level is returned."""
        parents = self._parents_in(frontier)
        child_refs = await self._children_of(parents)
        level = _Level()
        for position, node in enumerate(parents):
            self._place_children(node, child_refs.get(position, []), level)
        if level.to_fetch:
            await self._place_fetched(level, frontier[0].depth + 1)
        if self.budget.cut:
            self.truncated = True
        for node in parents:
            node.children.sort(key=lambda child: child.index)
        return level.next

    def _parents_in(self, frontier: list[Node]) -> list[Node]:
        """The nodes of a level whose children the walk wants; a depth cut marks it truncated."""
        parents = [node for node in frontier if self._wants_children(node)]
        if len(parents) < len(frontier) and any(
            node.child_count and node.depth + 1 > self.options.max_depth for node in frontier
        ):
            self.truncated = True
        return parents

    def _place_children(self, parent: Node, entries: list[Entry], level: _Level) -> None:
        """Attach the parent's children the cache knows; queue the others to be fetched.

        Stops when the node budget is spent (the budget marks the walk cut).
        """
        depth = parent.depth + 1
        managed = parent.ref.path in self.managed or parent.has_state(roles.STATE_MANAGES_DESCENDANTS)
        for index, entry, hidden in entries:
            if isinstance(entry, Ref):
                if entry.path == NULL_PATH or entry.bus != self.app.bus:
                    continue  # no object, or one of another application (never followed)
                child = self._from_cache(entry.path, depth)
                if child is None:
                    if not self._queue_fetch(_Pending(parent, entry, index, hidden), managed, level):
                        return
                    continue
            else:
                child = self._node_at(entry.path, depth)
            if not self._adopt(parent, child, index, hidden, level):
                return

    def _queue_fetch(self, pending: _Pending, managed: bool, level: _Level) -> bool:
        """Queue a child the cache does not know; False when the node budget is spent."""
        path = pending.ref.path
        if path in self.seen:
            return True
        self.seen.add(path)
        if not self.budget.take():
            return False
        if managed:
            self.managed.add(path)
        level.to_fetch.append(pending)
        return True

    def _adopt(self, parent: Node, child: Node, index: int, hidden: bool, level: _Level) -> bool:
        """Attach a cached child unless already placed or not kept; False when the budget is spent."""
        if child.ref.path in self.seen or not self._keep(child):
            return True
        self.seen.add(child.ref.path)
        if not self.budget.take():
            return False
        child.index = index if child.index < 0 else child.index
        if hidden:
            self.offscreen.add(child.ref.path)
        parent.children.append(child)
        level.next.append(child)
        return True

    async def _place_fetched(self, level: _Level, depth: int) -> None:
        """Fetch the queued children in one round and attach those that are kept."""
        fetched = await self._fetch_nodes([(p.ref, p.hidden) for p in level.to_fetch], depth)
        for pending, child in zip(level.to_fetch, fetched, strict=True):
            if child is None or not self._keep(child):
                self.budget.give_back()
                continue
            child.index = pending.index_in_parent
            if pending.hidden:
                self.offscreen.add(child.ref.path)
            pending.parent.children.append(child)
            level.next.append(child)

    async def _children_of(self, parents: list[Node]) -> dict[int, list[Entry]]:
        """Per parent (by position): its children as (index, cache item or ref, off screen)."""
        child_refs: dict[int, list[Entry]] = {}
        position_of = {id(node): position for position, node in enumerate(parents)}
        ask: list[Node] = []
        for position, node in enumerate(parents):
            hidden = node.ref.path in self.offscreen
            cached = self._children_from_cache(node)
            if cached is not None:
                child_refs[position] = [(i, item, hidden) for i, item in enumerate(cached)]
            else:
                ask.append(node)
        large = [n for n in ask if n.has_state(roles.STATE_MANAGES_DESCENDANTS) and n.child_count != 0]
        plain = [n for n in ask if not (n.has_state(roles.STATE_MANAGES_DESCENDANTS) and n.child_count != 0)]
        known: dict[str, list[Ref]] = await self.prefetch if self.prefetch is not None else {}
        fetched = await self._get_children([n for n in plain if n.ref.path not in known])
        for node in plain:
            refs = known.get(node.ref.path)
            if refs is None:
                refs = fetched.get(node.ref.path, [])
            hidden = node.ref.path in self.offscreen
            child_refs[position_of[id(node)]] = [(i, ref, hidden) for i, ref in enumerate(refs)]
        for node in large:
            child_refs[position_of[id(node)]] = await managed_children(
                self._batch,
                node,
                hidden=node.ref.path in self.offscreen,
                visible_only=self.options.visible_only,
                screen=self.screen,
            )

        return child_refs

    async def _get_children(self, nodes: list[Node]) -> dict[str, list[Ref]]:
        outcomes = await self._batch([Call(n.ref.path, ACCESSIBLE, "GetChildren") for n in nodes])
        return {
            node.ref.path: [Ref(bus, path) for bus, path in outcome[0]]
            for node, outcome in zip(nodes, outcomes, strict=True)
            if isinstance(outcome, list)
        }

    async def _fetch_nodes(self, refs: list[tuple[Ref, bool]], depth: int) -> list[Node | None]:
        """Role, states, name/description/child count and interfaces: four calls per node.

        Rows of long lists (descendants of MANAGES_DESCENDANTS containers, thousands of cells
        that are all alike) skip the interfaces: off screen no detail is fetched, and on screen
        position and actions are asked for anyway, an element without them answers an error.
        """
        calls: list[Call] = []
        asks: list[bool] = []
        for ref, hidden in refs:
            calls += [
                Call(ref.path, ACCESSIBLE, "GetRole"),
                Call(ref.path, ACCESSIBLE, "GetState"),
                Call(ref.path, PROPERTIES, "GetAll", "s", (ACCESSIBLE,)),
            ]
            ask = not hidden and ref.path not in self.managed
            asks.append(ask)
            if ask:
                calls.append(Call(ref.path, ACCESSIBLE, "GetInterfaces"))
        outcomes = await self._batch(calls)
        nodes: list[Node | None] = []
        at = 0
        for (ref, hidden), ask in zip(refs, asks, strict=True):
            role, states, props = outcomes[at : at + 3]
            interfaces: Outcome = outcomes[at + 3] if ask else None
            if not ask and not hidden:
                interfaces = [list(ASSUMED_INTERFACES)]
            at += 4 if ask else 3
            if not (isinstance(role, list) and isinstance(states, list) and isinstance(props, list)):
                nodes.append(None)
                continue
            values = {key: variant.value for key, variant in props[0].items()}
            nodes.append(
                Node(
                    ref,
                    int(role[0]),
                    str(values.get("Name", "")),
                    str(values.get("Description", "")),
                    tuple(states[0]),
                    frozenset(interfaces[0]) if isinstance(interfaces, list) else frozenset(),
                    int(values.get("ChildCount", 0)),
                    -1,
                    depth,
                )
            )
        return nodes

    # -- details ----------------------------------------------------------------------------
    async def _details(self, nodes: list[Node]) -> None:
        """Details of the given showing nodes not yet asked for (and not scrolled away)."""
        wanted = None if self.options.visible_only else self.options.positions_for
        todo = []
        for node in nodes:
            path = node.ref.path
            if path in self.detailed or path in self.offscreen:
                continue
            if wanted is not None and not wanted(node):
                continue
            self.detailed.add(path)
            todo.append(node)
        await fetch_details(self._batch, todo, self.options)
