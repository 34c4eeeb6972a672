"""cancel_and_wait ends a loop even when one cancellation is swallowed inside it."""

from __future__ import annotations

import asyncio

from agent.tasks import cancel_and_wait, wait_at_most


async def test_a_loop_that_swallows_a_cancellation_still_ends() -> None:
    swallowed = 0

    async def stubborn_loop() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed == 0:  # like a client library turning it into its own error
                    swallowed += 1
                    continue
                raise

    task = asyncio.create_task(stubborn_loop())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task, retry_every=0.05), 2)
    assert task.cancelled() and swallowed == 1


async def test_wait_at_most() -> None:
    assert await wait_at_most(asyncio.sleep(0, result=5), 1) == 5
    assert await wait_at_most(asyncio.sleep(10, result=5), 0.01) is None
