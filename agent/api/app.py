"""``create_app(config)``: the aiohttp application, its services and its routes."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from agent.api import guard, observe, routes
from agent.api.appkeys import CONFIG_KEY, SERVICES_KEY, TOKEN_KEY
from agent.api.middleware import TICKETS_KEY, bearer_auth, envelope
from agent.config import Config, read_token
from agent.mcp import http as mcp_http
from agent.services import Services

if TYPE_CHECKING:
    from agent.a11y.service import Accessibility
    from agent.live.sources import LiveService

LOG = logging.getLogger(__name__)


def build_services(config: Config) -> Services:
    """The real services; imported lazily so that importing agent.api touches no X server."""
    from agent.x11.backend import X11Desktop
    from agent.x11.damage import DamageMonitor
    from agent.x11.screenshot_cache import ScreenshotCache

    desktop = X11Desktop(config.display, capture_idle_s=config.capture_idle_seconds)
    damage = DamageMonitor(config.display)
    services = Services(
        config=config,
        desktop=desktop,
        accessibility=_accessibility(config),
        damage=damage,
        screenshots=ScreenshotCache(desktop, damage),
    )
    _add_window_services(services, config)
    _add_exec_services(services, config)  # also with --exec false: its reaper collects launched apps' orphans
    _add_wallpaper(services, config)
    _add_browser(services, config)
    services.live = _live(config)
    _add_screencasts(services)
    _add_heartbeat(services, config)
    return services


def _add_heartbeat(services: Services, config: Config) -> None:
    """The beat to the control plane (its module and psutil load only when one is configured)."""
    if config.control_plane_url is None:
        return
    from agent.heartbeat import from_config

    services.heartbeat = from_config(
        config,
        services.readiness,
        on_success=services.metrics.heartbeat_succeeded,
        on_failure=services.metrics.heartbeat_failed,
    )


def _accessibility(config: Config) -> Accessibility | None:
    """The AT-SPI service, reading the desktop user's session bus each time it (re)connects."""
    if not config.accessibility:
        return None
    from agent.a11y.service import Accessibility
    from agent.session.user import resolve_user, session_environment

    user = resolve_user(config.desktop_user)
    return Accessibility(lambda: session_environment(user, config.display, os.environ))


def _add_window_services(services: Services, config: Config) -> None:
    """Windows, clipboard, launcher, environment and wallpaper (each owns its X connection)."""
    from agent.session.environment import EnvironmentService
    from agent.session.launch_scope import ScopeMover
    from agent.session.launcher import Launcher
    from agent.session.user import resolve_user
    from agent.x11.clipboard import ClipboardService
    from agent.x11.windows import WindowService

    user = resolve_user(config.desktop_user)
    services.windows = WindowService.for_display(config.display)
    services.clipboard = ClipboardService(config.display)
    services.launcher = Launcher(
        user, config.display, services.windows, log_dir=config.launch_log_dir, scope=ScopeMover.detect()
    )
    services.environment = EnvironmentService(user, config.display, services.windows)


def _add_browser(services: Services, config: Config) -> None:
    """Chromium, started on first use as the desktop user (not with --browser false)."""
    if not config.browser:
        return
    from agent.browser.service import BrowserService
    from agent.session.launch_scope import ScopeMover
    from agent.session.user import resolve_user

    services.browser = BrowserService(
        resolve_user(config.desktop_user),
        config.display,
        allow_unsafe_urls=config.browser_allow_unsafe_urls,
        scope=ScopeMover.detect(),
    )


def _live(config: Config) -> LiveService:
    """The event hub and the X monitor that feeds it, and the /ws tickets."""
    from agent.live.sources import LiveService

    return LiveService(config.display, config.events_ring_size)


def _add_wallpaper(services: Services, config: Config) -> None:
    """The wallpaper reads file URLs through the files service, under its rules (none when off)."""
    from agent.session.user import resolve_user
    from agent.x11.wallpaper import WallpaperService

    files = services.files if config.exec_enabled else None
    services.wallpaper = WallpaperService(
        config.display,
        resolve_user(config.desktop_user),
        max_bytes=config.wallpaper_max_bytes,
        timeout=config.wallpaper_timeout,
        read_file=files.read_file if files is not None else None,
        fetch_urls=config.wallpaper_fetch_urls,
    )


def _add_screencasts(services: Services) -> None:
    """The screencast, driven by the damage monitor, capturing through the desktop."""
    from agent.desktop.screencast import Screencasts

    if services.damage is not None:
        services.screencasts = Screencasts(services.desktop, services.damage, services.metrics.registry)


def _add_exec_services(services: Services, config: Config) -> None:
    """Commands, background processes and files (no X connection needed)."""
    from agent.exec.service import ExecService
    from agent.files.service import FileService

    services.exec = ExecService(config)
    services.files = FileService(config, services.exec.user)


def create_app(config: Config, services: Services | None = None) -> web.Application:
    app = web.Application(
        middlewares=[observe.observe, envelope, guard.host_and_origin, bearer_auth, guard.body_type],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG_KEY] = config
    guard.install(app, config)
    app[TOKEN_KEY] = b"" if config.token_file is None else read_token(config.token_file).encode()
    app[SERVICES_KEY] = services if services is not None else build_services(config)
    live = app[SERVICES_KEY].live
    if live is not None:
        app[TICKETS_KEY] = live.tickets
    routes.add_routes(app)
    app.cleanup_ctx.append(_service_lifecycle)
    mcp_http.add_routes(app)  # POST /mcp: the MCP tools (the mcp SDK is loaded on first use)
    return app


async def _service_lifecycle(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES_KEY]
    await services.start()
    yield
    await services.close()
