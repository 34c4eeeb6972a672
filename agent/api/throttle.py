"""Logging that cannot flood: one line per message per interval, with a count of the rest."""

from __future__ import annotations

import logging
import time

LOG = logging.getLogger(__name__)


class Throttle(logging.Filter):
    """Lets one record per (logger, first line of message) through per ``interval`` seconds.

    The next one let through says how many were held back, so a storm (a failing accept, a flood of
    malformed requests) costs one line per interval instead of one per event.
    """

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg).partition("\n")[0][:200])
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.interval:g}s not logged)"
        if len(self._last) > 1000:  # keys are message templates; this only guards against odd ones
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
        return True

    def warning(self, key: str, msg: str, *args: object) -> None:
        LOG.warning(msg, *args, extra={"fields": {"event": key}})

    def error(self, key: str, msg: str, *args: object) -> None:
        LOG.error(msg, *args, extra={"fields": {"event": key}})


THROTTLE = Throttle()
THROTTLED_LOGGERS = (
    "agent.api.server",
    __name__,
    "asyncio",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.access",
)


def throttle_logs() -> None:
    """Put the throttle on the loggers a storm of bad connections can make talk."""
    for name in THROTTLED_LOGGERS:
        logger = logging.getLogger(name)
        if THROTTLE not in logger.filters:
            logger.addFilter(THROTTLE)
