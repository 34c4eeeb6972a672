"""The accessibility service: the desktop's AT-SPI tree, element search and element actions.

It owns one connection to the accessibility bus (found by ``agent.a11y.bus``, as the
environment report finds it) and one
connection per application, peer-to-peer where the application offers it. Everything is
asynchronous and bounded by a deadline: an application that hangs (or is stopped) costs a
request its deadline, never the daemon its event loop. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.a11y import bus as a11y_bus
from agent.a11y import roles
from agent.a11y.bus import CONNECT_TIMEOUT
from agent.a11y.dbus import Call, Connection
from agent.a11y.node import (
    ACCESSIBLE,
    DESKTOP_ID,
    PROPERTIES,
    ROOT_PATH,
    Budget,
    Node,
    Ref,
    Scope,
    ScreenRect,
    TreeResult,
    WalkOptions,
)
from agent.a11y.replay import Replays
from agent.a11y.walk import AppWalk
from agent.errors import (
    AccessibilityUnavailable,
    AgentError,
    ApplicationNotFound,
    DeadlineExceeded,
    ElementNotFound,
    NotFound,
)

LOG = logging.getLogger(__name__)

ATSPI_REGISTRY = "org.a11y.atspi.Registry"  # the AT-SPI registry daemon's bus name
BUS_DAEMON = "org.freedesktop.DBus"
STALLED_LEASH = 0.2  # seconds a hung application gets in later requests, until it answers again


@dataclass(frozen=True, slots=True)
class AppInfo:
    ref: Ref
    pid: int | None
    name: str


class Accessibility:
    """AT-SPI over D-Bus, for one desktop session."""

    def __init__(self, environ: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None) -> None:
        # A callable is read on every (re)connection, so a session that starts later is picked up.
        if environ is None:
            self._environ_fn: Callable[[], Mapping[str, str]] = lambda: os.environ
        elif callable(environ):
            self._environ_fn = environ
        else:
            fixed = dict(environ)
            self._environ_fn = lambda: fixed
        self._bus: Connection | None = None
        self._peers: dict[str, Connection] = {}
        self._replays: dict[str, Replays] = {}  # per application (bus name), while connected
        self._names: dict[str, AppInfo] = {}
        self._lock = asyncio.Lock()

    # -- connections --------------------------------------------------------------------------
    async def _a11y_bus(self) -> Connection:
        if self._bus is not None and self._bus.connected:
            return self._bus
        async with self._lock:
            if self._bus is not None and self._bus.connected:
                return self._bus
            await self._drop_all()
            self._bus = await a11y_bus.connect(self._environ_fn())
            LOG.info("connected to the accessibility bus")
            return self._bus

    async def _peer(self, app: Ref, deadline: float) -> Connection:
        """This application's connection: peer-to-peer if it offers an address, else via the bus."""
        conn = self._peers.get(app.bus)
        if conn is not None and conn.connected and not (conn.provisional and not conn.stalled):
            return conn
        if conn is not None:  # gone, or a stand-in for an application that answers again
            await self._peers.pop(app.bus).close()
            self._replays.pop(app.bus, None)
        bus = await self._a11y_bus()
        routed = bus.routed(app.bus)
        try:
            body = await routed.call(
                Call(app.path, "org.a11y.atspi.Application", "GetApplicationBusAddress"), deadline
            )
            address = str(body[0])
        except NotFound:
            await routed.close()
            raise
        except DeadlineExceeded:
            # Hung: keep this connection (it remembers the unanswered call, so later requests
            # give the application a short leash) and try peer-to-peer once it answers again.
            routed.provisional = True
            self._peers[app.bus] = routed
            return routed
        except Exception:  # no peer-to-peer address (not every toolkit offers one)
            address = ""
        if address:
            loop = asyncio.get_running_loop()
            try:
                peer = await Connection.open(
                    address, None, peer=True, timeout=max(0.05, min(CONNECT_TIMEOUT, deadline - loop.time()))
                )
            except Exception as exc:
                LOG.debug("peer-to-peer connection to %s failed: %s", app.bus, exc)
            else:
                await routed.close()
                self._peers[app.bus] = peer
                return peer
        self._peers[app.bus] = routed
        return routed

    async def _drop_all(self) -> None:
        self._replays.clear()
        peers, self._peers = self._peers, {}
        for conn in peers.values():
            await conn.close()
        if self._bus is not None:
            await self._bus.close()
            self._bus = None

    async def close(self) -> None:
        async with self._lock:
            await self._drop_all()

    async def check(self) -> str:
        """For /ready: raise AccessibilityUnavailable unless the registry answers within a second."""
        bus = await self._a11y_bus()
        try:
            body = await bus.call(
                Call(ROOT_PATH, ACCESSIBLE, "GetChildren", destination=ATSPI_REGISTRY), _now() + 1.0
            )
        except Exception as exc:
            raise AccessibilityUnavailable(
                "the accessibility registry did not answer", details={"reason": str(exc)}
            ) from None
        return f"{len(body[0])} accessible application(s)"

    # -- applications -------------------------------------------------------------------------
    async def applications(self, deadline: float) -> list[AppInfo]:
        """The registered applications with pid and name (names are asked once per application)."""
        bus = await self._a11y_bus()
        try:
            body = await bus.call(
                Call(ROOT_PATH, ACCESSIBLE, "GetChildren", destination=ATSPI_REGISTRY), deadline
            )
        except Exception as exc:
            if _now() >= deadline:  # the caller's deadline, not the registry, ran out
                raise DeadlineExceeded("the deadline passed before the registry answered") from None
            raise AccessibilityUnavailable(
                "the accessibility registry did not answer", details={"reason": str(exc)}
            ) from None
        refs = [Ref(name, path) for name, path in body[0]]
        live = {ref.bus for ref in refs}
        for gone in [name for name in self._peers if name not in live]:
            await self._peers.pop(gone).close()
        for gone in [name for name in self._names if name not in live]:
            del self._names[gone]
        unknown = [ref for ref in refs if ref.bus not in self._names]
        fallback: dict[str, AppInfo] = {}
        if unknown:
            calls = [_pid_call(r.bus) for r in unknown] + [
                Call(r.path, PROPERTIES, "Get", "ss", (ACCESSIBLE, "Name"), r.bus) for r in unknown
            ]
            outcomes, _ = await bus.batch(calls, deadline)
            for i, ref in enumerate(unknown):
                pid_outcome, name_outcome = outcomes[i], outcomes[len(unknown) + i]
                pid = int(pid_outcome[0]) if isinstance(pid_outcome, list) else None
                if isinstance(name_outcome, list):
                    self._names[ref.bus] = AppInfo(ref, pid, str(name_outcome[0].value))
                else:  # not answering: name it after its process, and ask again next time
                    fallback[ref.bus] = AppInfo(ref, pid, _process_name(pid))
        return [self._names.get(ref.bus) or fallback[ref.bus] for ref in refs]

    @staticmethod
    def match_app(apps: list[AppInfo], app: str) -> list[AppInfo]:
        """``app`` is a pid or a name (case-insensitive; exact matches win over substrings)."""
        if app.isdigit():
            return [info for info in apps if info.pid == int(app)]
        wanted = app.lower()
        exact = [info for info in apps if info.name.lower() == wanted]
        return exact or [info for info in apps if wanted in info.name.lower()]

    # -- the tree -----------------------------------------------------------------------------
    async def tree(
        self,
        options: WalkOptions,
        *,
        app: str | None = None,
        element: str | None = None,
        window_title: str | None = None,
        screen: ScreenRect | None = None,
    ) -> TreeResult:
        """The desktop's tree (or one application's, or one element's subtree), bounded.

        ``app`` is a name or pid; ``window_title`` (with ``app`` as the window's pid) keeps only
        that top-level; ``element`` walks the subtree of one element id. The root is what was
        asked for: the element, the application ``app`` names (the desktop when it names
        several), else the desktop, whose bounds are the screen's.
        """
        started = _now()
        deadline = started + options.timeout
        budget = Budget(options.max_nodes)
        desktop = Node(Ref("", DESKTOP_ID), roles.ROLE_DESKTOP_FRAME, "main", "", (0, 0), frozenset(), 0)
        desktop.extents = screen
        budget.take()
        unresponsive: list[str] = []
        truncated = False
        asked_for_one = element is not None  # one element, or one application named by ``app``
        if element is not None:
            ref = Ref.parse(element)
            conn = await self._peer(Ref(ref.bus, ROOT_PATH), deadline)
            walk = AppWalk(conn, ref, Scope(options, budget, deadline, screen), self._replays_of(ref.bus))
            root = await walk.run(1)
            if root is None:
                raise ElementNotFound(
                    f"no accessible element has the id {element!r}", details={"id": element}
                )
            desktop.children.append(root)
            truncated = walk.truncated
        else:
            try:
                apps = await self.applications(deadline)
            except DeadlineExceeded:  # a deadline too short for even the list: an empty, cut tree
                apps, truncated = [], True
            if app is not None and not truncated:
                apps = self.match_app(apps, app)
                if not apps:
                    raise ApplicationNotFound(
                        f"no accessible application matches {app!r}", details={"app": app}
                    )
                asked_for_one = len(apps) == 1
            scope = Scope(options, budget, deadline, screen, window_title)
            if options.max_depth < 1:
                apps, truncated = [], bool(apps)
            walks = await asyncio.gather(*(self._walk_app(info, scope) for info in apps))
            for info, (walked, walk_truncated, answered) in zip(apps, walks, strict=True):
                truncated = truncated or walk_truncated
                if walked is None and answered:  # no budget left for it
                    continue
                node = walked or Node(
                    info.ref, roles.ROLE_APPLICATION, info.name, "", (0, 0), frozenset(), -1
                )
                if not answered:
                    unresponsive.append(info.ref.id)
                node.pid = info.pid
                node.depth = 1
                node.name = node.name or info.name
                desktop.children.append(node)
        desktop.child_count = len(desktop.children)
        root = desktop.children[0] if asked_for_one and len(desktop.children) == 1 else desktop
        return TreeResult(
            root=root,
            truncated=truncated or budget.cut or bool(unresponsive),
            node_count=len(root.iter()),  # after visible_only pruning, what is returned
            elapsed_ms=round((_now() - started) * 1000, 1),
            unresponsive=tuple(unresponsive),
        )

    async def _walk_app(self, info: AppInfo, scope: Scope) -> tuple[Node | None, bool, bool]:
        """(the application's subtree, whether it was cut, whether the application answered)."""
        if not scope.budget.take():
            return None, True, True
        try:
            conn = await self._peer(info.ref, scope.deadline)
        except Exception as exc:
            LOG.info("application %s (pid %s) unreachable: %s", info.name, info.pid, exc)
            return None, True, False
        if conn.stalled:
            # It left calls of an earlier request unanswered: give it a short leash, not the deadline.
            leash = min(scope.deadline, _now() + STALLED_LEASH)
            scope = Scope(scope.options, scope.budget, leash, scope.screen, scope.window_title)
        walk = AppWalk(conn, info.ref, scope, self._replays_of(info.ref.bus))
        root = await walk.run(1)
        return root, walk.truncated, root is not None

    def _replays_of(self, bus: str) -> Replays:
        replays = self._replays.get(bus)
        if replays is None:
            replays = self._replays[bus] = Replays()
        return replays

    async def app_pid(self, bus: str, deadline: float) -> int | None:
        """The process behind an application's bus name (remembered with its name)."""
        known = self._names.get(bus)
        if known is not None:
            return known.pid
        try:
            body = await (await self._a11y_bus()).call(_pid_call(bus), deadline)
        except AgentError:  # gone, no answer, or a bus that will not say: the caller goes without
            return None
        return int(body[0])

    async def element(self, element_id: str, deadline: float) -> tuple[Connection, Ref]:
        """The connection that reaches ``element_id``; 404 when its application is gone."""
        ref = Ref.parse(element_id)
        try:
            conn = await self._peer(Ref(ref.bus, ROOT_PATH), deadline)
        except NotFound:
            raise ElementNotFound(
                f"no accessible element has the id {element_id!r}", details={"id": element_id}
            ) from None
        return conn, ref


def _pid_call(bus: str) -> Call:
    """Ask the bus daemon which process owns ``bus``."""
    return Call("/org/freedesktop/DBus", BUS_DAEMON, "GetConnectionUnixProcessID", "s", (bus,), BUS_DAEMON)


def _now() -> float:
    return asyncio.get_running_loop().time()


def _process_name(pid: int | None) -> str:
    if pid is None:
        return ""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""
