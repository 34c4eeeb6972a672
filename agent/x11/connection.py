"""One python-xlib connection owned by one thread.

Every X call of a service runs on the connection's own executor thread, so the event loop
never blocks on X and requests are serialised without locks. When the X server goes away the
call raises ``DisplayUnavailable`` (503) and the next call reconnects, at most every
``RECONNECT_INTERVAL`` seconds, so the daemon recovers by itself when the server comes back.

Protocol errors from asynchronous requests are trapped per call: ``run`` syncs after the
function and raises ``XProtocolError`` if the server answered an error, instead of letting
python-xlib print it to stderr and carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from Xlib import error
from Xlib.display import Display
from Xlib.protocol import rq

from agent.errors import AgentError, DisplayUnavailable

LOG = logging.getLogger(__name__)
T = TypeVar("T")

RECONNECT_INTERVAL = 0.25


class XProtocolError(AgentError):
    """The X server answered a request with an error (BadWindow, BadValue, ...)."""

    def __init__(self, errors: list[error.XError]) -> None:
        first = errors[0]
        name = type(first).__name__
        resource = getattr(first, "resource_id", None)
        resource = getattr(resource, "id", resource)  # python-xlib may hand a Resource object
        super().__init__(
            f"X server error {name}",
            details={"x_error": name, "resource_id": hex(resource) if isinstance(resource, int) else None},
        )
        self.errors = errors


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

    @property
    def generation(self) -> int:
        """Incremented on every new connection; caches keyed on it are dropped on reconnect."""
        return self._generation

    # -- calls ---------------------------------------------------------------
    async def run(self, fn: Callable[[Display], T]) -> T:
        """Run ``fn(display)`` on the X thread; trap errors; raise DisplayUnavailable when down."""
        if self._closed:
            raise DisplayUnavailable("the agent is shutting down")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.call, fn)

    def call(self, fn: Callable[[Display], T]) -> T:
        """Synchronous form of ``run``; only for code already on the X thread or in tests."""
        display = self._ensure()
        self._errors.clear()
        try:
            result = fn(display)
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
        if self._errors:
            errors = list(self._errors)
            self._errors.clear()
            raise XProtocolError(errors)
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
            display = Display(self.display_name)
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

        def _close() -> None:
            if self._display is not None:
                with contextlib.suppress(*CONNECTION_ERRORS):
                    self._display.close()
                self._display = None

        await loop.run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=False)
