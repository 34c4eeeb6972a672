"""The services an action handler may use, built once per app by ``agent.api.app.build_services``.

Each service family owns its own resources (X connections, threads, child processes) and knows
nothing of HTTP. Tests build ``Services`` around fakes or real backends alike.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.config import Config
from agent.live.viewer_tickets import ViewerTickets
from agent.supervision.heap import IdleTrim
from agent.supervision.metrics import Metrics
from agent.supervision.readiness import Readiness

if TYPE_CHECKING:
    from agent.a11y.service import Accessibility
    from agent.browser.service import BrowserService
    from agent.desktop.backend import DesktopBackend
    from agent.desktop.screencast import Screencasts
    from agent.exec.service import ExecService
    from agent.files.service import FileService
    from agent.heartbeat import Heartbeat
    from agent.live.sources import LiveService
    from agent.session.environment import EnvironmentService
    from agent.session.launcher import Launcher
    from agent.x11.clipboard import ClipboardService
    from agent.x11.damage import DamageMonitor
    from agent.x11.screenshot_cache import ScreenshotCache
    from agent.x11.wallpaper import WallpaperService
    from agent.x11.windows import WindowService

LOG = logging.getLogger(__name__)


@dataclass
class Services:
    config: Config
    desktop: DesktopBackend
    # Held by every input action and by a whole /batch, so a batch's input is never interleaved.
    input_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Windows, clipboard, apps, environment, wallpaper (None where a test does not need them).
    windows: WindowService | None = None
    clipboard: ClipboardService | None = None
    launcher: Launcher | None = None
    environment: EnvironmentService | None = None
    wallpaper: WallpaperService | None = None
    # Commands, background processes and files, as the desktop user (None where a test does not need them).
    exec: ExecService | None = None
    files: FileService | None = None
    # Readiness (/ready, heartbeat, systemd STATUS=), metrics and the heartbeat to the control plane.
    metrics: Metrics = field(default_factory=Metrics)
    heartbeat: Heartbeat | None = None
    # The AT-SPI tree and element actions (None when --accessibility is off or in tests without it).
    accessibility: Accessibility | None = None
    # Screen changes (X DAMAGE), shared by wait-for, screenshot_after and the screencast; started
    # by its first subscriber (None with a fake desktop: no settling, screen waits are a 503).
    damage: DamageMonitor | None = None
    # Screenshots of an unchanged region served again from the bytes already encoded (on DAMAGE).
    screenshots: ScreenshotCache | None = None
    # Chromium on the desktop, driven over CDP (None when --browser is off or in tests without it).
    browser: BrowserService | None = None
    # The desktop event hub, its X monitor and the /ws tickets (None where a test does not need them).
    live: LiveService | None = None
    # Live JPEG frames on screen changes, one broadcaster per set of options (None without DAMAGE).
    screencasts: Screencasts | None = None
    # Single-use links to the live viewer page, each with its rights (view only, or control).
    viewer_tickets: ViewerTickets = field(default_factory=ViewerTickets)
    readiness: Readiness = field(init=False)
    # Freed heap memory goes back to the system once no request is in flight (agent.supervision.heap).
    heap_trim: IdleTrim = field(init=False)

    def __post_init__(self) -> None:
        a11y_check = self.accessibility.check if self.accessibility is not None else None
        self.readiness = Readiness(
            self.desktop, a11y_check=a11y_check, a11y_required=self.config.accessibility_required
        )
        self.readiness.subscribe(self.metrics.readiness_changed)
        self.heap_trim = IdleTrim(lambda: bool(self.metrics.in_flight))

    async def start(self) -> None:
        """Start background work (runs once the event loop is up)."""
        # The screenshot encoders (Pillow, ISA-L, mss: a few MiB) load on the first
        # capture, not here: an idle agent does not carry them.
        self.heap_trim.start()
        await self.readiness.start()
        if self.exec is not None:
            await self.exec.start()
        if self.heartbeat is not None:
            await self.heartbeat.start()
        if self.live is not None:
            await self.live.start(self)

    async def close(self) -> None:
        """Release held input and every resource, in reverse order of start."""
        self.readiness.begin_shutdown()
        await self.heap_trim.close()
        if self.live is not None:
            await self.live.close()
        if self.heartbeat is not None:
            await self.heartbeat.close()  # the last beat says "stopping"
        await self.readiness.close()
        try:  # a key or button left down would stay down for the next agent and the user
            await asyncio.wait_for(self.desktop.release_all(), 2.0)
        except Exception as exc:  # the display may be gone; nothing is held on a dead server
            LOG.warning("releasing held keys and buttons failed: %s", exc)
        if self.browser is not None:  # the browser is the agent's instrument: it goes with it
            await self.browser.close()
        if self.exec is not None:  # ends every command's process group
            await self.exec.close()
        if self.files is not None:
            await self.files.close()
        if self.launcher is not None:
            await self.launcher.close()
        if self.wallpaper is not None:
            self.wallpaper.close()
        if self.clipboard is not None:
            await self.clipboard.close()
        if self.windows is not None:
            await self.windows.close()
        await self._close_screen_watch()
        if self.accessibility is not None:
            await self.accessibility.close()
        await self.desktop.close()

    async def _close_screen_watch(self) -> None:
        """The screencast, then the damage monitor that drives it."""
        if self.screencasts is not None:
            await self.screencasts.close()
        if self.screenshots is not None:
            await self.screenshots.close()
        if self.damage is not None:
            await self.damage.close()
