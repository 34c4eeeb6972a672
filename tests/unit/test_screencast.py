"""The screencast's broadcaster and viewers, driven by a scripted change source and a desktop whose
pictures the test chooses: sharing, drop-oldest, the fps cap, unchanged pictures, viewer links."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from agent.desktop.backend import CaptureOptions, Region
from agent.desktop.screencast import CastOptions, Screencasts
from agent.live.viewer_tickets import ViewerTickets
from agent.models.image import ImageResult
from agent.x11.damage import Rect, ScreenChange


class Pictures:
    """A desktop whose next capture is whatever the test put in ``picture``."""

    def __init__(self) -> None:
        self.picture = b"one"
        self.captures = 0

    async def capture(self, region: Region | None, options: CaptureOptions) -> ImageResult:
        self.captures += 1
        await asyncio.sleep(0)
        return ImageResult(self.picture, "jpeg", 1280, 720, 1280, 720)


class Changes:
    def __init__(self) -> None:
        self.subscribers: list[Callable[[ScreenChange], None]] = []

    async def subscribe(
        self, on_change: Callable[[ScreenChange], None], on_lost: Callable[[str], None] | None = None
    ) -> Changes.Sub:
        self.subscribers.append(on_change)
        return Changes.Sub(self, on_change)

    class Sub:
        def __init__(self, owner: Changes, callback: Callable[[ScreenChange], None]) -> None:
            self.owner, self.callback = owner, callback

        def close(self) -> None:
            self.owner.subscribers.remove(self.callback)

    def draw(self) -> None:
        change = ScreenChange((Rect(0, 0, 10, 10),), time.monotonic(), time.time())
        for callback in list(self.subscribers):
            callback(change)


def casts() -> tuple[Screencasts, Pictures, Changes]:
    desktop, changes = Pictures(), Changes()
    return Screencasts(desktop, changes, CollectorRegistry()), desktop, changes  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_viewers_share_a_broadcaster_and_a_slow_one_gets_only_the_newest() -> None:
    async def run() -> None:
        screencasts, desktop, changes = casts()
        options = CastOptions(fps=1000)
        fast, slow = await screencasts.watch(options), await screencasts.watch(options)
        assert screencasts.broadcasters == 1 and len(changes.subscribers) == 1
        fast_frames, slow_frames = fast.frames(), slow.frames()
        assert (await anext(fast_frames)).image.data == b"one"
        for picture in (b"two", b"three", b"four"):
            desktop.picture = picture
            changes.draw()
            await settle()
            assert (await anext(fast_frames)).image.data == picture
        newest = await anext(slow_frames)  # it read nothing meanwhile: the newest frame only
        assert newest.image.data == b"four" and newest.seq == 4
        assert desktop.captures == 4  # once per change, for both viewers
        assert screencasts.metrics.dropped._value.get() == 3
        await fast.leave()
        assert screencasts.broadcasters == 1
        await slow.leave()
        assert screencasts.broadcasters == 0 and not changes.subscribers

    asyncio.run(run())


def test_a_late_viewer_gets_the_current_frame_at_once_and_unchanged_pictures_are_not_sent() -> None:
    async def run() -> None:
        screencasts, desktop, changes = casts()
        first = await screencasts.watch(CastOptions(fps=1000))
        assert (await anext(first.frames())).seq == 1
        changes.draw()  # drawn again, looks the same
        await asyncio.sleep(0.05)
        late = await screencasts.watch(CastOptions(fps=1000))
        frame = await asyncio.wait_for(anext(late.frames()), 1)
        assert frame.seq == 1 and desktop.captures == 2
        assert screencasts.metrics.unchanged._value.get() == 1
        await first.leave()
        await late.leave()

    asyncio.run(run())


def test_the_fps_cap_folds_changes_into_one_capture() -> None:
    async def run() -> None:
        screencasts, desktop, changes = casts()
        viewer = await screencasts.watch(CastOptions(fps=5))
        frames = viewer.frames()
        await anext(frames)
        started = time.monotonic()
        for index in range(10):
            desktop.picture = f"p{index}".encode()
            changes.draw()
            await asyncio.sleep(0.01)
        frame = await anext(frames)
        await asyncio.sleep(0.25)
        assert desktop.captures <= 3, desktop.captures  # not one per change
        assert time.monotonic() - started >= 0.08  # the second capture waited (half a 0.2 s slot at least)
        assert frame.image.data.startswith(b"p")
        await viewer.leave()

    asyncio.run(run())


def test_viewer_links_are_single_use_and_carry_their_right() -> None:
    links = ViewerTickets()
    control, view = links.issue(60, control=True), links.issue(60, control=False)
    assert links.redeem(view) is False
    assert links.redeem(control) is True
    assert links.redeem(control) is None
    assert links.redeem("made-up") is None
    assert links.redeem(links.issue(-1, control=True)) is None
