"""The screencast: JPEG frames of the screen, captured only when the screen changes.

Why change-driven: the X server (DAMAGE, ``agent.x11.damage``) says when something was drawn,
so an idle desktop costs no capture, no encode and no wakeup. A ``Broadcaster`` exists per set
of options (fps, quality, size, cursor): every viewer of the same options shares its one
capture+encode per change. It starts with its first viewer and stops with its last.

Why drop-oldest: each viewer holds at most one frame not yet taken (the newest); a viewer that
reads slowly skips frames instead of queueing them, so memory stays bounded and the capture never
waits for a reader. Capture and encode run on the desktop's capture thread, off the event loop
and off the input connection, so no viewer can slow input.

Nothing here knows HTTP: ``agent.api.screencast`` sends a viewer's frames as MJPEG or WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from agent.actions.outputs import Frame
from agent.desktop.backend import CaptureOptions, DesktopBackend
from agent.errors import AgentError

if TYPE_CHECKING:
    from agent.x11.damage import ScreenChange

LOG = logging.getLogger(__name__)


class ChangeSubscription(Protocol):
    def close(self) -> None: ...


class ChangeSource(Protocol):
    """What tells the screencast that the screen changed (``agent.x11.damage.DamageMonitor``)."""

    async def subscribe(
        self, on_change: Callable[[ScreenChange], None], on_lost: Callable[[str], None] | None = None
    ) -> ChangeSubscription: ...


@dataclass(frozen=True, slots=True)
class CastOptions:
    """What makes two viewers' frames the same bytes: one broadcaster per distinct value."""

    fps: float = 30.0
    quality: int = 70
    scale: float | None = None
    max_width: int | None = None
    max_height: int | None = None
    cursor: bool = False

    def capture(self) -> CaptureOptions:
        return CaptureOptions(
            format="jpeg",
            quality=self.quality,
            scale=self.scale,
            max_width=self.max_width,
            max_height=self.max_height,
            cursor=self.cursor,
        )


class CastMetrics:
    """The screencast's counters, in the agent's /metrics registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.captured = Counter(
            "computer_agent_screencast_frames_encoded",
            "Screencast frames captured and encoded (once per change, whatever the number of viewers).",
            registry=registry,
        )
        self.sent = Counter(
            "computer_agent_screencast_frames_sent", "Screencast frames handed to viewers.", registry=registry
        )
        self.unchanged = Counter(
            "computer_agent_screencast_frames_unchanged",
            "Screencast captures not sent: the screen was drawn again but looked the same.",
            registry=registry,
        )
        self.dropped = Counter(
            "computer_agent_screencast_frames_dropped",
            "Screencast frames a viewer skipped: a newer one came before it took it (a slow reader).",
            registry=registry,
        )
        self.encoders = Gauge(
            "computer_agent_screencast_encoders",
            "Screencast broadcasters running (one per set of options being watched).",
            registry=registry,
        )
        self.viewers = Gauge(
            "computer_agent_screencast_viewers", "Screencast viewers connected.", registry=registry
        )


class Viewer:
    """One reader's place at a broadcaster: the newest frame it has not taken yet, or none."""

    def __init__(self, broadcaster: Broadcaster) -> None:
        self._broadcaster = broadcaster
        self._pending: Frame | None = None
        self._ready = asyncio.Event()
        self.ended: str | None = None  # why the stream ended (the display was lost)
        self.left = False

    def offer(self, frame: Frame) -> None:
        if self._pending is not None:
            self._broadcaster.metrics.dropped.inc()
        self._pending = frame
        self._ready.set()

    def end(self, reason: str) -> None:
        self.ended = reason
        self._ready.set()

    async def frames(self) -> AsyncIterator[Frame]:
        """Each frame as it comes (the newest one when the reader was slow); ends with the source."""
        while not self.left:
            await self._ready.wait()
            self._ready.clear()
            frame, self._pending = self._pending, None
            if frame is not None:
                self._broadcaster.metrics.sent.inc()
                yield frame
            elif self.ended is not None:
                return

    async def leave(self) -> None:
        if not self.left:
            self.left = True
            self._ready.set()
            await self._broadcaster.remove(self)


class Broadcaster:
    """One capture+encode loop for every viewer of the same options."""

    def __init__(
        self,
        options: CastOptions,
        desktop: DesktopBackend,
        changes: ChangeSource,
        metrics: CastMetrics,
        on_idle: Callable[[Broadcaster], None],
    ) -> None:
        self.options = options
        self.metrics = metrics
        self._desktop = desktop
        self._changes = changes
        self._on_idle = on_idle
        self._viewers: list[Viewer] = []
        self._dirty = asyncio.Event()
        self._subscription: ChangeSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.latest: Frame | None = None
        self.captures = 0
        self._seq = 0

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    async def start(self) -> None:
        """Watch for changes first (so none is missed), then capture the current picture."""
        self._subscription = await self._changes.subscribe(self._changed, self._lost)
        self.metrics.encoders.inc()
        self._dirty.set()
        self._task = asyncio.create_task(self._run(), name=f"screencast-{id(self):x}")

    def join(self) -> Viewer:
        viewer = Viewer(self)
        self._viewers.append(viewer)
        self.metrics.viewers.inc()
        if self.latest is not None:  # the current picture at once: nothing changed since it was taken
            viewer.offer(self.latest)
        return viewer

    async def remove(self, viewer: Viewer) -> None:
        with contextlib.suppress(ValueError):
            self._viewers.remove(viewer)
            self.metrics.viewers.dec()
        if not self._viewers:
            self._on_idle(self)
            await self.stop()

    def _changed(self, change: ScreenChange) -> None:
        self._dirty.set()

    def _lost(self, reason: str) -> None:
        self.end(f"lost the X display: {reason}")

    def end(self, reason: str) -> None:
        """End every viewer's stream (they leave, which stops this broadcaster)."""
        for viewer in list(self._viewers):
            viewer.end(reason)
        self._on_idle(self)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    async def _run(self) -> None:
        interval = 1.0 / self.options.fps
        next_at = 0.0
        options = self.options.capture()
        try:
            while True:
                await self._dirty.wait()
                delay = next_at - time.monotonic()
                if delay > 0:  # the fps cap: changes meanwhile are all in the next capture
                    await asyncio.sleep(delay)
                self._dirty.clear()  # changes from now on need another capture
                started = time.monotonic()
                # The cap holds on average: slots follow a fixed cadence, so a change that came late
                # in its slot does not push every later one back; never closer than half a slot.
                next_at = max(next_at + interval, started + interval / 2)
                wall = time.time()
                image = await self._desktop.capture(None, options)
                self.captures += 1
                self.metrics.captured.inc()
                if self.latest is not None and image.data == self.latest.image.data:
                    self.metrics.unchanged.inc()
                    continue  # drawn again the same (a redraw, the damage of the first grab): no news
                self._seq += 1
                frame = Frame(image, self._seq, wall)
                self.latest = frame
                for viewer in self._viewers:
                    viewer.offer(frame)
        except AgentError as exc:  # the display went away mid-capture
            LOG.warning("screencast capture failed: %s", exc.message)
            self.end(exc.message)
        except Exception as exc:  # a bug: the viewers are told (their streams end), not left waiting
            LOG.exception("screencast capture failed")
            self.end(f"{type(exc).__name__}: {exc}")

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
            self.metrics.encoders.dec()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Screencasts:
    """The broadcasters running now, one per set of options."""

    def __init__(self, desktop: DesktopBackend, changes: ChangeSource, registry: CollectorRegistry) -> None:
        self._desktop = desktop
        self._changes = changes
        self.metrics = CastMetrics(registry)
        self._broadcasters: dict[CastOptions, Broadcaster] = {}
        self._starting: dict[CastOptions, asyncio.Future[Broadcaster]] = {}

    @property
    def broadcasters(self) -> int:
        return len(self._broadcasters)

    async def watch(self, options: CastOptions) -> Viewer:
        """A viewer of the screen with ``options``; it gets the current frame at once (or as
        soon as the first capture is done), then one per change. ``leave()`` it when done."""
        broadcaster = self._broadcasters.get(options)
        if broadcaster is None:
            broadcaster = await self._start(options)
        return broadcaster.join()

    async def _start(self, options: CastOptions) -> Broadcaster:
        starting = self._starting.get(options)
        if starting is not None:  # another viewer of these options is starting it: share it
            return await asyncio.shield(starting)
        future: asyncio.Future[Broadcaster] = asyncio.get_running_loop().create_future()
        self._starting[options] = future
        broadcaster = Broadcaster(options, self._desktop, self._changes, self.metrics, self._forget)
        try:
            await broadcaster.start()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            del self._starting[options]
        self._broadcasters[options] = broadcaster
        future.set_result(broadcaster)
        return broadcaster

    def _forget(self, broadcaster: Broadcaster) -> None:
        if self._broadcasters.get(broadcaster.options) is broadcaster:
            del self._broadcasters[broadcaster.options]

    async def close(self) -> None:
        for broadcaster in list(self._broadcasters.values()):
            broadcaster.end("the agent is stopping")
            await broadcaster.stop()
        self._broadcasters.clear()
