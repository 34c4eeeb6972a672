"""The services an action handler may use, built once per app by ``agent.api.app.create_app``.

Each service family owns its own resources (X connections, threads, child processes) and knows
nothing of HTTP. Tests build ``Services`` around fakes or real backends alike.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.config import Config

if TYPE_CHECKING:
    from agent.desktop import DesktopBackend


@dataclass
class Services:
    config: Config
    desktop: DesktopBackend
    # Held by every input action and by a whole /batch, so a batch's input is never interleaved.
    input_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
