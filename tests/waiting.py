"""The one way tests wait for an effect: poll a condition until it holds, with a deadline.

A fixed sleep either wastes time (the effect came sooner) or flakes (it came later); polling
returns as soon as the effect is observable and fails with a message naming what never came.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

T = TypeVar("T")

POLL_INTERVAL = 0.02


def wait_until(
    condition: Callable[[], T | Literal[False] | None],
    *,
    timeout: float = 5.0,
    what: str = "the condition",
    interval: float = POLL_INTERVAL,
) -> T:
    """Call ``condition`` until it returns something truthy, and return that; AssertionError
    naming ``what`` (and the last value seen) if it has not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s (last: {value!r})")
        time.sleep(interval)


async def wait_until_async(
    condition: Callable[[], T | Literal[False] | Awaitable[T | Literal[False] | None] | None],
    *,
    timeout: float = 5.0,
    what: str = "the condition",
    interval: float = POLL_INTERVAL,
) -> T:
    """``wait_until`` for a test on the event loop: the loop keeps running while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s (last: {value!r})")
        await asyncio.sleep(interval)
