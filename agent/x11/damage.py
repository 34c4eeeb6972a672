"""Screen changes as the X server reports them (the DAMAGE extension), for asyncio subscribers.

Why DAMAGE and not screenshots: the server itself says which rectangles were drawn, when, at
no cost while nothing is drawn; comparing captures would cost a full-screen grab per poll and
still miss what changed and back between two polls.

Why its own connection and thread: reading events means blocking on the socket, which neither
the event loop nor the input connection (XTest, captures) may do. The thread sleeps in
``select`` on the X socket and a control pipe, so an idle desktop wakes nothing. The damage
object exists only while someone subscribes (the first subscriber arms it; it goes ``LINGER``
seconds after the last one left): with nobody listening, an animating screen costs nothing either.

Waiters use it through ``agent.x11.change_watch`` ("quiet for N ms?", "changed?", with deadlines).

When the X server goes away, subscribers are told (``on_lost``) and the thread reconnects, at
most every ``RECONNECT_INTERVAL`` seconds while anyone is subscribed.

Reports are ``DamageReportDeltaRectangles``: after each batch of events the damage is emptied
(``DamageSubtract``), so a busy application yields one event per new rectangle per batch, not
one per drawing request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from Xlib import X
from Xlib.display import Display
from Xlib.ext import damage as xdamage
from Xlib.xobject.drawable import Window

from agent.errors import DisplayUnavailable
from agent.x11.connection import CONNECTION_ERRORS, open_display, unread_on

LOG = logging.getLogger(__name__)

RECONNECT_INTERVAL = 0.5  # seconds between attempts while the X server is down
ARM_TIMEOUT = 3.0  # seconds a subscriber waits for the damage object before a 503
LINGER = 5.0  # seconds the damage object outlives its last subscriber (back-to-back waits)


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    def intersects(self, other: Rect) -> bool:
        return (
            self.x < other.x + other.width
            and other.x < self.x + self.width
            and self.y < other.y + other.height
            and other.y < self.y + self.height
        )


def bounding(rects: tuple[Rect, ...]) -> Rect:
    """The smallest rectangle holding every one of ``rects`` (which must not be empty)."""
    left = min(r.x for r in rects)
    top = min(r.y for r in rects)
    right = max(r.x + r.width for r in rects)
    bottom = max(r.y + r.height for r in rects)
    return Rect(left, top, right - left, bottom - top)


@dataclass(frozen=True, slots=True)
class ScreenChange:
    """Rectangles of the screen drawn since the previous change, read at ``at`` (monotonic)."""

    regions: tuple[Rect, ...]
    at: float
    wall_time: float  # time.time() at ``at``, for consumers that log or stream it

    @property
    def bounds(self) -> Rect:
        return bounding(self.regions)

    def touches(self, region: Rect | None) -> bool:
        return region is None or any(r.intersects(region) for r in self.regions)


ChangeCallback = Callable[[ScreenChange], None]
LostCallback = Callable[[str], None]


class Subscription:
    """One subscriber's registration; ``close`` (or leaving ``async with``) ends it."""

    def __init__(
        self, monitor: DamageMonitor, on_change: ChangeCallback, on_lost: LostCallback | None
    ) -> None:
        self._monitor = monitor
        self.on_change = on_change
        self.on_lost = on_lost

    def close(self) -> None:
        self._monitor._unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class DamageMonitor:
    """Screen changes of one display, shared by every subscriber (wait-for, settle, screencast).

    Callbacks run on the event loop of the first subscriber, in the order changes were read.
    """

    def __init__(self, display_name: str) -> None:
        self.display_name = display_name
        self._subscribers: list[Subscription] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._wanted = threading.Event()  # someone subscribes: the thread keeps a damage object
        self._stopping = threading.Event()
        self._armed = False  # the damage object exists and events are being read
        # A subscriber's ticket is acknowledged by the thread once it has seen the subscriber
        # wanted and the damage object exists: from then on, no change escapes it.
        self._tickets = 0
        self._acknowledged = 0
        self._failures = 0  # attempts to connect or arm that failed (the server is down)
        self._progress = asyncio.Event()  # set on every acknowledgement or failure
        self._last_error = "not connected yet"
        self.last_change: ScreenChange | None = None
        self.changes_seen = 0
        # For ``caught_up``: changes handed to the event loop (thread) and delivered (loop), the
        # thread asleep with the damage object armed, and the X socket it sleeps on.
        self._posted = 0
        self._quiet = False
        self._socket = -1
        self._screen_size = (0, 0)  # the root's size as the thread last read it
        self.wakeups = 0  # times the thread woke up (tests: an idle desktop wakes nothing)

    # -- subscribing (event loop) -------------------------------------------------------
    async def subscribe(self, on_change: ChangeCallback, on_lost: LostCallback | None = None) -> Subscription:
        """Register callbacks and return once changes are being watched (503 if the X server
        cannot be reached or lacks DAMAGE within ``ARM_TIMEOUT``)."""
        if self._stopping.is_set():
            raise DisplayUnavailable("the agent is shutting down")
        subscription = Subscription(self, on_change, on_lost)
        self._subscribers.append(subscription)
        self._start()
        self._tickets += 1
        ticket, failures = self._tickets, self._failures
        self._wanted.set()
        self._poke()
        try:
            armed = await self._arrival(ticket, failures)
        except BaseException:
            subscription.close()
            raise
        if not armed:
            subscription.close()
            raise DisplayUnavailable(
                f"cannot watch the X display {self.display_name} for changes",
                details={"reason": self._last_error},
            )
        return subscription

    async def _arrival(self, ticket: int, failures: int) -> bool:
        """True once the thread acknowledged ``ticket``; False after a failed attempt (the
        server is down) or ARM_TIMEOUT."""
        deadline = time.monotonic() + ARM_TIMEOUT
        while self._acknowledged < ticket:
            left = deadline - time.monotonic()
            if self._failures > failures or left <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)
        return True

    def _unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(subscription)
        if not self._subscribers:
            self._wanted.clear()
            self._poke()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def armed(self) -> bool:
        """The damage object exists and its changes are being read (event loop's view)."""
        return self._armed

    def caught_up(self) -> bool:
        """True when every change the X server has sent so far has reached the subscribers: the
        reader thread sleeps with the damage object armed, nothing it read waits for the event
        loop, and nothing unread waits on its socket (one ``select``, a few microseconds).

        A client that synced with the server (xdotool, xsetroot, any toolkit's round trip) had its
        drawing's DamageNotify written to our socket before its own reply, so what it drew is
        seen here. False does not mean a change: only that it cannot be ruled out now."""
        if not (self._quiet and self._armed and self._posted == self.changes_seen):
            return False
        return not unread_on(self._socket, unknown=True)

    # -- delivery (event loop) ---------------------------------------------------------
    def _deliver(self, change: ScreenChange) -> None:
        self.last_change = change
        self.changes_seen += 1
        for subscription in list(self._subscribers):
            try:
                subscription.on_change(change)
            except Exception:  # one subscriber's bug must not starve the others
                LOG.exception("a screen-change subscriber failed")

    def _acknowledge(self, ticket: int) -> None:
        self._armed = True
        self._acknowledged = max(self._acknowledged, ticket)
        self._progress.set()

    def _set_armed(self, armed: bool, reason: str = "") -> None:
        was_armed, self._armed = self._armed, armed
        if was_armed and not armed and reason:
            for subscription in list(self._subscribers):
                if subscription.on_lost is not None:
                    subscription.on_lost(reason)

    def _note_failure(self) -> None:
        self._failures += 1
        self._progress.set()

    def _post(self, fn: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(fn, *args)

    # -- the thread ----------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name="x11-damage", daemon=True)
        self._thread.start()

    def _poke(self) -> None:
        if self._wake_w >= 0:
            with contextlib.suppress(BlockingIOError, OSError):  # a full pipe wakes the thread anyway
                os.write(self._wake_w, b"!")

    def _sleep(self, seconds: float | None, *fds: int) -> list[int]:
        """Block until one of ``fds`` or the control pipe is readable (or ``seconds`` pass);
        the control pipe is emptied. Returns the readable descriptors."""
        readable, _, _ = select.select([self._wake_r, *fds], [], [], seconds)
        self.wakeups += 1
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(self._wake_r, 4096)
        return readable

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self._wanted.is_set():
                self._sleep(None)  # nobody listens: no connection, no wakeups
                continue
            try:
                display = open_display(self.display_name)
            except CONNECTION_ERRORS as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                self._post(self._note_failure)
                self._sleep(RECONNECT_INTERVAL)
                continue
            try:
                self._watch(display)
            except CONNECTION_ERRORS as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                LOG.warning("screen-change monitor lost X display %s: %s", self.display_name, exc)
                self._post(self._set_armed, False, self._last_error)
                self._post(self._note_failure)
                self._sleep(RECONNECT_INTERVAL)
            except Exception as exc:  # no DAMAGE, or a bug: say so, retry later
                self._last_error = f"{type(exc).__name__}: {exc}"
                LOG.exception("screen-change monitor failed on %s", self.display_name)
                self._post(self._set_armed, False, self._last_error)
                self._post(self._note_failure)
                self._sleep(RECONNECT_INTERVAL)
            finally:
                with contextlib.suppress(*CONNECTION_ERRORS):
                    display.close()

    def _watch(self, display: Display) -> None:
        """Read damage events until the agent stops or the connection breaks; the damage object
        lives while anyone subscribes, and ``LINGER`` seconds more (back-to-back waits)."""
        if not display.has_extension(xdamage.extname):
            raise RuntimeError(f"the X server of {self.display_name} has no DAMAGE extension")
        display.damage_query_version()  # the protocol requires it before any other request
        root = display.screen().root
        # A resized screen (RandR) is a change of all of it, though shrinking draws nothing.
        root.change_attributes(event_mask=X.StructureNotifyMask)
        geometry = root.get_geometry()
        self._screen_size = (geometry.width, geometry.height)
        notify = display.query_extension(xdamage.extname).first_event + xdamage.DamageNotifyCode
        socket = self._socket = display.fileno()
        damage: int | None = None
        unwanted_since: float | None = None
        acknowledged = 0
        while not self._stopping.is_set():
            timeout: float | None = None
            if self._wanted.is_set():
                unwanted_since = None
                ticket = self._tickets  # read before checking the damage object
                if damage is None:
                    damage = self._create_damage(display, root)
                    LOG.info("watching X display %s for screen changes (DAMAGE)", self.display_name)
                if ticket > acknowledged:
                    acknowledged = ticket
                    self._post(self._acknowledge, ticket)
            elif damage is not None:
                unwanted_since = unwanted_since or time.monotonic()
                timeout = LINGER - (time.monotonic() - unwanted_since)
                if timeout <= 0:
                    display.damage_destroy(damage)
                    display.sync()
                    damage, timeout = None, None
                    self._post(self._set_armed, False)
            self._drain(display, damage, notify)
            self._quiet = damage is not None
            try:
                self._sleep(timeout, socket)
            finally:
                self._quiet = False

    def _create_damage(self, display: Display, root: Window) -> int:
        """A new damage object on the root window, its baseline the screen as it is now.

        DamageCreate reports the whole drawable as damaged at once (the X server's
        ``DamageExtCreate``): that report is not a change, and with delta reports it would also
        hide every later change until subtracted. The round trip (``sync``) brings it into the
        queue, where it is dropped; nothing else is queued then (no damage object existed)."""
        damage: int = root.damage_create(xdamage.DamageReportDeltaRectangles)
        display.sync()
        while display.pending_events():  # DamageNotify, and maybe the root's ConfigureNotify
            display.next_event()
        geometry = root.get_geometry()
        self._screen_size = (geometry.width, geometry.height)
        display.damage_subtract(damage, X.NONE, X.NONE)
        display.sync()
        return damage

    def _drain(self, display: Display, damage: int | None, notify: int) -> None:
        """Hand every queued damage rectangle to the subscribers as one change, then empty the
        damage so the next drawing is reported again. ``notify``: DamageNotify's event code
        (python-xlib registers a copy of its class, so ``isinstance`` cannot tell)."""
        rects: list[Rect] = []
        while display.pending_events():  # raises a connection error when the server is gone
            event = display.next_event()
            if event.type & 0x7F == notify:
                area = event.area
                rects.append(Rect(area.x, area.y, area.width, area.height))
            elif event.type == X.ConfigureNotify:  # only the root's StructureNotify is selected here
                width, height = self._screen_size
                if (event.width, event.height) != (width, height):
                    rects.append(Rect(0, 0, max(width, event.width), max(height, event.height)))
                    self._screen_size = (event.width, event.height)
        if not rects or damage is None:
            return
        display.damage_subtract(damage, X.NONE, X.NONE)
        display.flush()
        change = ScreenChange(tuple(dict.fromkeys(rects)), time.monotonic(), time.time())
        self._posted += 1
        self._post(self._deliver, change)

    # -- shutdown ------------------------------------------------------------------------
    async def close(self) -> None:
        self._stopping.set()
        self._poke()
        thread = self._thread
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 2.0)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1
