"""Before an element click: which X window is the element's (by process, then title or
rectangle), and what is done when another is in front."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import pytest

from agent.a11y import elements
from agent.a11y.elements import Toplevel
from agent.a11y.node import ScreenRect
from agent.actions import uncover as uncover_module
from agent.actions.uncover import is_window_of
from agent.errors import Conflict
from agent.x11.window_list import Decoration, WindowAt, WindowInfo

NO_FRAME = Decoration()


def window(
    title: str, x: int, y: int, width: int, height: int, *, frame: Decoration = NO_FRAME, pid: int = 7
) -> WindowInfo:
    return WindowInfo(
        id=0x800008,
        title=title,
        wm_class="Zenity",
        instance="zenity",
        x=x,
        y=y,
        width=width,
        height=height,
        frame=frame,
        pid=pid,
        focused=False,
        minimized=False,
        maximized=False,
        desktop=0,
    )


def test_the_title_identifies_the_window() -> None:
    assert is_window_of(window("Question", 551, 329, 188, 120), Toplevel(7, "Question", None))


def test_another_process_never_owns_the_element() -> None:
    assert not is_window_of(window("Question", 551, 329, 188, 120, pid=8), Toplevel(7, "Question", None))


def test_the_frame_rectangle_identifies_a_decorated_window() -> None:
    """Toolkits report the window with its decorations (zenity under xfwm4: 5, 5, 29, 5)."""
    decorated = window("", 551, 329, 188, 120, frame=Decoration(left=5, right=5, top=29, bottom=5))
    assert is_window_of(decorated, Toplevel(7, "", ScreenRect(546, 300, 198, 154)))
    assert not is_window_of(decorated, Toplevel(7, "", ScreenRect(0, 0, 198, 154)))


def test_the_client_rectangle_identifies_a_window_that_draws_its_own_decorations() -> None:
    assert is_window_of(
        window("gtk3-widget-factory", 0, 0, 1366, 741), Toplevel(7, "", ScreenRect(0, 0, 1366, 741))
    )


def test_a_different_title_and_place_is_another_window() -> None:
    about = window("About GTK Widget Factory", 467, 243, 452, 371)
    assert not is_window_of(about, Toplevel(7, "", ScreenRect(0, 0, 1366, 741)))
    assert not is_window_of(about, Toplevel(7, "Widget Factory", None))


# -- the decisions, with the X server and AT-SPI answers given --------------------------------
APP, OTHER, WM = 7, 8, 9
QUESTION = window("Question", 551, 329, 188, 120, frame=Decoration(left=5, right=5, top=29, bottom=5))
COVER = replace(window("gtk3-widget-factory", 0, 0, 1366, 741, pid=OTHER), id=0xA00007)
ABOUT = replace(window("About", 467, 243, 452, 371), id=0x800C5A)
MAIN = replace(window("", 0, 0, 1366, 741), id=0x800007)


class FakeWindows:
    """What the X server answers: the window at the point, before and after a raise."""

    def __init__(self, before: WindowAt, after: WindowAt | None = None) -> None:
        self.current, self.after = before, after
        self.raised: list[int] = []

    async def at(self, x: int, y: int) -> WindowAt:
        return self.current

    async def request_focus(self, window: int) -> None:
        self.raised.append(window)
        if self.after is not None:
            self.current = self.after


class FakeAccessibility:
    async def app_pid(self, bus: str, deadline: float) -> int:
        return APP


def at(client: WindowInfo | None, pid: int | None, windows: list[WindowInfo]) -> WindowAt:
    return WindowAt(window=client.id if client else 0x1E00001, pid=pid, client=client, windows=windows)


async def run(
    monkeypatch: pytest.MonkeyPatch, windows: FakeWindows, element_window: Toplevel | None
) -> str | None:
    async def toplevel(service: object, element_id: str) -> Toplevel:
        assert element_window is not None, "the common case must not climb the AT-SPI tree"
        return element_window

    monkeypatch.setattr(elements, "toplevel", toplevel)
    monkeypatch.setattr(uncover_module, "SETTLE_SECONDS", 0.05)
    return await uncover_module.uncover(cast(Any, FakeAccessibility()), cast(Any, windows), "1.4:9", 645, 382)


async def test_the_apps_only_window_in_front_is_clicked_without_asking_at_spi(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeWindows(at(QUESTION, APP, [QUESTION, COVER]))
    assert await run(monkeypatch, fake, None) is None
    assert fake.raised == []


async def test_a_menu_of_the_app_in_front_is_clicked(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWindows(at(None, APP, [MAIN, ABOUT]))
    assert await run(monkeypatch, fake, None) is None and fake.raised == []


async def test_a_window_of_another_process_in_front_is_raised_over(monkeypatch: pytest.MonkeyPatch) -> None:
    windows = [QUESTION, COVER]
    fake = FakeWindows(at(COVER, OTHER, windows), after=at(QUESTION, APP, windows))
    assert await run(monkeypatch, fake, Toplevel(APP, "Question", None)) == QUESTION.hex_id
    assert fake.raised == [QUESTION.id]


async def test_a_cover_that_stays_is_a_409_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    windows = [QUESTION, COVER]
    fake = FakeWindows(at(COVER, OTHER, windows))
    with pytest.raises(Conflict) as caught:
        await run(monkeypatch, fake, Toplevel(APP, "Question", None))
    assert caught.value.details["covered_by"] == {"window": COVER.hex_id, "title": COVER.title, "pid": OTHER}
    assert fake.raised == [QUESTION.id]


async def test_a_modal_dialog_of_the_same_app_is_a_409(monkeypatch: pytest.MonkeyPatch) -> None:
    """The element is in the main window (its extents); the About dialog is in front and stays."""
    windows = [MAIN, ABOUT]
    fake = FakeWindows(at(ABOUT, APP, windows))
    with pytest.raises(Conflict):
        await run(monkeypatch, fake, Toplevel(APP, "", ScreenRect(0, 0, 1366, 741)))
    assert fake.raised == [MAIN.id]


async def test_windows_of_the_same_app_that_cannot_be_told_apart_click_as_aimed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeWindows(at(ABOUT, APP, [MAIN, ABOUT]))
    assert await run(monkeypatch, fake, Toplevel(APP, "", None)) is None and fake.raised == []


async def test_a_helper_process_without_windows_clicks_as_aimed(monkeypatch: pytest.MonkeyPatch) -> None:
    """AT-SPI's process has no window (e.g. it serves another process's UI): nothing to raise."""
    fake = FakeWindows(at(COVER, OTHER, [COVER]))
    assert await run(monkeypatch, fake, Toplevel(APP, "Question", None)) is None and fake.raised == []


async def test_no_window_of_the_app_at_the_point_clicks_as_aimed(monkeypatch: pytest.MonkeyPatch) -> None:
    far = replace(QUESTION, x=1000, y=600)
    fake = FakeWindows(at(COVER, OTHER, [far, COVER]))
    assert await run(monkeypatch, fake, Toplevel(APP, "Other title", None)) is None and fake.raised == []


async def test_an_unknown_owner_clicks_as_aimed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeWindows(at(None, None, [QUESTION, COVER]))
    assert await run(monkeypatch, fake, None) is None and fake.raised == []
