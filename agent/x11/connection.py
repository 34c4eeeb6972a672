"""One python-xlib connection owned by one thread.

Every X call of a service runs on the connection's own executor thread, so the event loop
never blocks on X and requests are serialised without locks. When the X server goes away the
call raises ``DisplayUnavailable`` (503) and the next call reconnects, at most every
``RECONNECT_INTERVAL`` seconds, so the daemon recovers by itself when the server comes back.

X errors are mapped here, once, for every request of every call: an asynchronous one (python-xlib
hands it to the error handler; ``call`` syncs after the function so it arrives in time) and a
reply request's (raised out of the function) alike. ``typed_x_error`` turns them into the agent's
errors: BadWindow and BadDrawable into ``WindowNotFound`` (404: the window closed while the call
ran), BadMatch into ``WindowStateConflict`` (409), anything else into ``XProtocolError`` (500).
An X error is an answer, not a broken connection: the connection stays up for the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import select
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from Xlib import error
from Xlib.display import Display
from Xlib.protocol import rq

from agent.errors import (
    AgentError,
    DisplayUnavailable,
    WindowNotFound,
    WindowStateConflict,
    XProtocolError,
)

LOG = logging.getLogger(__name__)
T = TypeVar("T")

RECONNECT_INTERVAL = 0.25

# Errors about the resource a request named, when that resource is a window (or a window used as
# a drawable): it does not exist, so it closed between the lookup and the request.
_GONE = frozenset({"BadWindow", "BadDrawable"})


def typed_x_error(name: str, resource: int | None, window: int | None = None) -> AgentError:
    """The agent's error for an X error ``name`` (python-xlib's class name, "BadWindow") about
    ``resource`` (the id the server names, if any), in a call about ``window`` (if any)."""
    if name in _GONE and resource:
        return WindowNotFound(format_window_id(resource), "it closed while the request ran", x_error=name)
    if name == "BadMatch":  # the server names no resource for it: the call's window is the one
        return WindowStateConflict(format_window_id(window) if window else None, name)
    # Not a race the caller could lose: a request the agent got wrong. No traceback, it says it all.
    LOG.warning("the X server answered %s (resource or value: %s)", name, resource)
    return XProtocolError(name, format_window_id(resource) if resource else None)


def from_xlib_error(err: error.XError, window: int | None = None) -> AgentError:
    """``typed_x_error`` for one of python-xlib's errors."""
    name = type(err).__name__
    if type(err) is error.XError:  # an extension's error python-xlib has no class for
        name = f"X error {getattr(err, 'code', '?')}"
    resource = getattr(err, "resource_id", None)
    resource = getattr(resource, "id", resource)  # python-xlib may hand a Resource object
    return typed_x_error(name, resource if isinstance(resource, int) else None, window)


def from_error_code(code: int, resource: int | None) -> AgentError:
    """``typed_x_error`` for an error known by its protocol code (XCB clients such as mss)."""
    known = error.xerror_class.get(code)
    return typed_x_error(known.__name__ if known else f"X error {code}", resource)


def unread_on(socket: int, *, unknown: bool) -> bool:
    """Whether the X server has written to ``socket`` what nobody has read yet (one ``select``, a
    few microseconds, from any thread); ``unknown`` when it cannot tell (closed meanwhile)."""
    try:
        readable, _, _ = select.select([socket], [], [], 0)
    except (OSError, ValueError):  # closed by its reader thread meanwhile
        return unknown
    return bool(readable)


def open_display(display_name: str) -> Display:
    """Open a python-xlib connection whose X errors parse (every agent connection opens here).

    python-xlib 0.33's RANDR support registers its three error classes at codes 0-2 instead of
    after the extension's first error code, over BadRequest and BadValue, and as plain exceptions
    without the fields an error needs: the next BadValue then raises AttributeError inside the
    reply parser and can leave the connection spinning (python-xlib issues #241, #259). The core
    classes are put back; an extension error python-xlib has no working class for parses as a
    plain ``XError``.
    """
    display = Display(display_name)
    classes = display.display.error_classes
    for code, cls in list(classes.items()):
        if isinstance(cls, type) and issubclass(cls, error.XError):
            continue
        if code in error.xerror_class:
            classes[code] = error.xerror_class[code]
        else:
            del classes[code]
    return display


def format_window_id(resource: int) -> str:
    """How window (and other resource) ids are written everywhere: ``0x2200003``."""
    return f"0x{resource:x}"


# Errors python-xlib raises when the socket is gone or cannot be opened.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    error.ConnectionClosedError,
    error.DisplayError,
    error.DisplayConnectionError,
    error.DisplayNameError,
    ConnectionError,
    BrokenPipeError,
    OSError,
)


EventHook = Callable[[Display, rq.Event], None]
ConnectHook = Callable[[Display], None]


class XConnection:
    """A Display and the single thread that may touch it."""

    def __init__(self, display_name: str, *, name: str = "x11") -> None:
        self.display_name = display_name
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._display: Display | None = None
        self._last_attempt = 0.0
        self._last_error = "not connected yet"
        self._errors: list[error.XError] = []
        self._event_hooks: list[EventHook] = []
        self._connect_hooks: list[ConnectHook] = []
        self._generation = 0
        self._closed = False

    # -- hooks ---------------------------------------------------------------
    def on_event(self, hook: EventHook) -> None:
        """Call ``hook`` (on the X thread) for every event read from the server."""
        self._event_hooks.append(hook)

    def on_connect(self, hook: ConnectHook) -> None:
        """Call ``hook`` (on the X thread) after each (re)connection, e.g. to select events."""
        self._connect_hooks.append(hook)

    # -- state ---------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._display is not None

    def fileno(self) -> int | None:
        """The socket of the open connection (None when down), for a thread that waits on it.

        python-xlib's ``fileno`` raises the socket error a call on the X thread has just met
        (the server went away) until that thread drops the connection: down, too."""
        display = self._display
        if display is None:
            return None
        try:
            fd: int = display.fileno()
        except CONNECTION_ERRORS:
            return None
        return fd

    def unread(self) -> bool:
        """Whether the server has written to us since the X thread last read (one ``select``, a
        few microseconds, from any thread): an event the hooks have not seen yet, such as the
        root's ConfigureNotify of a resize. True when it cannot tell (no connection)."""
        fd = self.fileno()
        return True if fd is None else unread_on(fd, unknown=True)

    @property
    def generation(self) -> int:
        """Incremented on every new connection; caches keyed on it are dropped on reconnect."""
        return self._generation

    # -- calls ---------------------------------------------------------------
    async def run(self, fn: Callable[[Display], T], *, window: int | None = None) -> T:
        """Run ``fn(display)`` on the X thread; raise DisplayUnavailable when down, and an X
        error as the agent's typed error (``typed_x_error``); ``window``: the window the call is
        about, named by a BadMatch."""
        if self._closed:
            raise DisplayUnavailable("the agent is shutting down")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self.call, fn, window=window))

    def call(self, fn: Callable[[Display], T], *, window: int | None = None) -> T:
        """Synchronous form of ``run``; only for code already on the X thread or in tests."""
        display = self._ensure()
        self._errors.clear()
        try:
            try:
                result = fn(display)
            except error.XError as exc:
                # A reply request (GetWindowAttributes...) raises its error right away. Sync
                # anyway, so that what the function sent before it cannot fail the next call.
                display.sync()
                raise from_xlib_error(exc, window) from None
            # The trap: a round trip makes the server answer every request sent so far, so an
            # asynchronous error (BadWindow...) is raised for the call that caused it. It is also
            # what makes input "delivered" when the call returns.
            display.sync()
            self.drain_events(display)
        except CONNECTION_ERRORS as exc:
            self._drop(f"{type(exc).__name__}: {exc}")
            raise DisplayUnavailable(
                f"lost the X display {self.display_name}", details={"reason": self._last_error}
            ) from None
        finally:
            errors, self._errors = self._errors, []
        if errors:
            raise from_xlib_error(errors[0], window)
        return result

    def drain_events(self, display: Display) -> None:
        """Hand every queued event to the hooks without blocking."""
        while display.pending_events():
            event = display.next_event()
            for hook in self._event_hooks:
                try:
                    hook(display, event)
                except Exception:  # a hook bug must not break input
                    LOG.exception("X event hook failed on %s", type(event).__name__)

    def _ensure(self) -> Display:
        if self._display is not None:
            return self._display
        now = time.monotonic()
        if now - self._last_attempt < RECONNECT_INTERVAL and self._generation > 0:
            raise DisplayUnavailable(
                f"the X display {self.display_name} is not reachable",
                details={"reason": self._last_error},
            )
        self._last_attempt = now
        try:
            display = open_display(self.display_name)
        except CONNECTION_ERRORS as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._generation = max(self._generation, 1)  # throttle from now on
            raise DisplayUnavailable(
                f"the X display {self.display_name} is not reachable",
                details={"reason": self._last_error},
            ) from None
        display.set_error_handler(self._trap)
        self._display = display
        self._generation += 1
        LOG.info("connected to X display %s (%s)", self.display_name, self.name)
        try:
            for hook in self._connect_hooks:
                hook(display)
            display.sync()
        except CONNECTION_ERRORS as exc:
            self._drop(f"{type(exc).__name__}: {exc}")
            raise DisplayUnavailable(f"lost the X display {self.display_name}") from None
        return display

    def _trap(self, err: error.XError, request: object = None) -> None:
        """python-xlib's error handler: called as handler(error, request) on the X thread."""
        self._errors.append(err)

    def _drop(self, reason: str) -> None:
        if self._display is not None:
            LOG.warning("X display %s lost (%s): %s", self.display_name, self.name, reason)
            try:
                self._display.close()
            except Exception:  # the socket is already dead; nothing more to release
                LOG.debug("closing a dead X connection failed", exc_info=True)
        self._display = None
        self._last_error = reason
        self._last_attempt = time.monotonic()

    async def close(self) -> None:
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.disconnect)
        self._executor.shutdown(wait=False)

    def disconnect(self) -> None:
        """Close the display on the calling thread (the X thread, or the one thread that used
        ``call`` on a one-shot connection)."""
        if self._display is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._display.close()
            self._display = None
