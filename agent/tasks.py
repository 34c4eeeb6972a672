"""Small asyncio helpers shared by the services' background loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

LOG = logging.getLogger(__name__)

T = TypeVar("T")


async def cancel_and_wait(task: asyncio.Task[Any] | None, *, retry_every: float = 0.5) -> None:
    """Cancel a background task and wait until it has really ended.

    The cancellation is repeated until the task is done: code inside it may swallow one
    (a client library that turns a cancellation into its own timeout error, or Python 3.11's
    ``wait_for`` race), and a loop that swallowed it would otherwise run on forever.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_every)
    if not task.cancelled() and task.exception() is not None:
        LOG.debug("background task %s ended with %r", task.get_name(), task.exception())


async def wait_at_most(awaitable: Awaitable[T], seconds: float) -> T | None:
    """``await`` with a deadline; None when it passes.

    ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11, wait_for can swallow a
    cancellation that arrives as the inner future completes, so a loop cancelled on shutdown
    would run on and ``cancel_and_wait`` would wait forever (seen in the heartbeat's tests).
    """
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        return None
