"""What desktop this is: display, session, window manager, user, screen, DPI, keyboard, a11y bus.

Everything is read live on each call (it is cheap: a few root-window properties on the windows
connection and one D-Bus round trip), so a window manager or keyboard layout that changes
after start-up is reported as it is now, not as it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from Xlib import Xatom
from Xlib.display import Display

from agent.a11y import bus as a11y_bus
from agent.session.user import DesktopUser, session_environment
from agent.x11 import ewmh
from agent.x11.windows import WindowService

if TYPE_CHECKING:  # the models load with the first request, not with the idle agent's services
    from agent.models.windows import Environment, KeyboardDetails, ScreenDetails

LOG = logging.getLogger(__name__)

A11Y_TIMEOUT = 1.5  # seconds for the whole accessibility-bus probe

# Desktop environments recognisable from their window manager when XDG_CURRENT_DESKTOP is unset.
_DE_OF_WM = {"xfwm4": "XFCE", "mutter": "GNOME", "gnome shell": "GNOME", "kwin": "KDE", "marco": "MATE"}


@dataclass(frozen=True, slots=True)
class _XFacts:
    wm: str | None
    screen: ScreenDetails
    keyboard: KeyboardDetails


class EnvironmentService:
    def __init__(
        self,
        user: DesktopUser,
        display: str,
        windows: WindowService,
        *,
        base_env: dict[str, str] | None = None,
    ) -> None:
        self._user = user
        self._display = display
        self._windows = windows
        self._base_env = base_env

    async def describe(self) -> Environment:
        from agent.models.windows import Environment

        env = session_environment(self._user, self._display, self._base_env or os.environ)
        facts_task = asyncio.ensure_future(self._windows.conn.run(_read_x_facts))
        problem = await a11y_bus.probe(env, A11Y_TIMEOUT)
        facts = await facts_task
        desktop = env.get("XDG_CURRENT_DESKTOP") or env.get("DESKTOP_SESSION") or None
        if desktop is None and facts.wm is not None:
            desktop = _DE_OF_WM.get(facts.wm.lower())
        return Environment(
            display=self._display,
            display_server="x11",
            session_type=env.get("XDG_SESSION_TYPE") or "x11",
            desktop_environment=desktop,
            window_manager=facts.wm,
            user=self._user.name,
            uid=self._user.uid,
            home=self._user.home,
            screen=facts.screen,
            dpi=facts.screen.dpi,
            keyboard_layout=facts.keyboard.layout,
            keyboard=facts.keyboard,
            accessibility_bus=problem is None,
            accessibility_bus_error=problem,
        )


def _read_x_facts(display: Display) -> _XFacts:
    from agent.models.windows import KeyboardDetails, ScreenDetails

    atoms = ewmh.Atoms(display)
    found = ewmh.supporting_wm(display, atoms)
    screen = display.screen()
    root = screen.root.id
    batch = ewmh.Batch(display)
    batch.prop(root, Xatom.RESOURCE_MANAGER, Xatom.STRING)
    batch.prop(root, display.intern_atom("_XKB_RULES_NAMES"), Xatom.STRING)
    resources, rules = (ewmh.as_prop(r) for r in batch.collect())
    width, height = int(screen.width_in_pixels), int(screen.height_in_pixels)
    width_mm, height_mm = int(screen.width_in_mms), int(screen.height_in_mms)
    dpi = _xft_dpi(resources.text() if resources else "")
    if dpi is None:
        dpi = round(width * 25.4 / width_mm, 1) if width_mm else 96.0
    # _XKB_RULES_NAMES: rules, model, layout, variant, options (NUL-separated, any may be missing).
    rules_model_layout_variant_options = [*(rules.text().split("\0") if rules else []), "", "", "", "", ""]
    xkb_rules, model, layout, variant, options = rules_model_layout_variant_options[:5]
    return _XFacts(
        wm=found[1] if found else None,
        screen=ScreenDetails(
            width=width,
            height=height,
            width_mm=width_mm,
            height_mm=height_mm,
            depth=int(screen.root_depth),
            dpi=dpi,
        ),
        keyboard=KeyboardDetails(
            rules=xkb_rules, model=model, layout=layout, variant=variant, options=options
        ),
    )


def _xft_dpi(resources: str) -> float | None:
    """``Xft.dpi`` from the X resource database (what GTK and Qt use), if set."""
    for line in resources.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Xft.dpi":
            try:
                return float(value.strip())
            except ValueError:
                return None
    return None
