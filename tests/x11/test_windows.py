"""Window management under xfwm4 and openbox, checked with wmctrl, xwininfo, xprop and exit codes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from Xlib import X
from Xlib.display import Display

from agent.errors import InvalidArgument, NotFound
from agent.session.devdesktop import DevDesktop
from agent.x11.windows import WindowManagerUnavailable, WindowService
from tests.waiting import wait_until
from tests.x11.windowing import (
    active_window,
    observe,
    observed,
    start_app,
    stop_app,
    window_of,
    wmctrl,
    xprop,
)


@pytest.fixture(scope="module", params=["xfwm4", "openbox"])
def wm_desktop(request: pytest.FixtureRequest) -> Iterator[DevDesktop]:
    with DevDesktop(window_manager=request.param) as running:
        yield running


@pytest.fixture()
async def windows(wm_desktop: DevDesktop) -> AsyncIterator[WindowService]:
    service = WindowService.for_display(wm_desktop.display)
    yield service
    await service.close()


@pytest.fixture()
def xterm(wm_desktop: DevDesktop) -> Iterator[tuple[int, int]]:
    proc = start_app(wm_desktop, "xterm", "-T", "term \u2013 ü✓", "-e", "sleep 60")
    yield proc.pid, window_of(wm_desktop, proc.pid)
    stop_app(proc)


@pytest.fixture()
def zenity(wm_desktop: DevDesktop) -> Iterator[tuple[int, int]]:
    proc = start_app(wm_desktop, "zenity", "--entry", "--title", "Zenity ✓ ärger")
    yield proc.pid, window_of(wm_desktop, proc.pid)
    stop_app(proc)


async def test_list_matches_wmctrl_xwininfo_and_xprop(
    wm_desktop: DevDesktop, windows: WindowService, xterm: tuple[int, int], zenity: tuple[int, int]
) -> None:
    listed = {w.id: w for w in await windows.list_windows()}
    assert set(listed) == set(wmctrl(wm_desktop))
    for pid, window in (xterm, zenity):
        ours, theirs = listed[window], observed(wm_desktop, window)
        assert ours.pid == theirs.pid == pid
        assert ours.title == theirs.title
        assert (ours.x, ours.y, ours.width, ours.height) == (
            theirs.abs_x,
            theirs.abs_y,
            theirs.width,
            theirs.height,
        )
        assert f'"{ours.wm_class}"' in xprop(wm_desktop, window, "WM_CLASS")
        assert ours.frame.top > 0  # decorated: the client area starts below the title bar
    assert listed[xterm[1]].title == "term \u2013 ü✓"
    assert listed[zenity[1]].title == "Zenity ✓ ärger"
    assert (listed[xterm[1]].wm_class, listed[zenity[1]].wm_class) == ("XTerm", "Zenity")
    assert [w.id for w in listed.values() if w.focused] == [active_window(wm_desktop)]


async def test_move_and_resize_land_where_asked(
    wm_desktop: DevDesktop, windows: WindowService, zenity: tuple[int, int]
) -> None:
    _, window = zenity
    await windows.move(window, 123, 145)
    seen = observed(wm_desktop, window)
    assert (seen.abs_x, seen.abs_y) == (123, 145)
    await windows.resize(window, 420, 310)
    seen = observed(wm_desktop, window)
    assert (seen.width, seen.height) == (420, 310)
    assert (seen.abs_x, seen.abs_y) == (123, 145)
    # Moving to the position read back leaves the window where it is (frame-aware geometry).
    info = await windows.get(window)
    await windows.move(window, info.x, info.y)
    assert (observed(wm_desktop, window).abs_x, observed(wm_desktop, window).abs_y) == (123, 145)


async def test_maximize_minimize_and_focus(
    wm_desktop: DevDesktop, windows: WindowService, xterm: tuple[int, int], zenity: tuple[int, int]
) -> None:
    _, window = zenity
    await windows.maximize(window)
    state = xprop(wm_desktop, window, "_NET_WM_STATE")
    assert "_NET_WM_STATE_MAXIMIZED_VERT" in state and "_NET_WM_STATE_MAXIMIZED_HORZ" in state
    assert observed(wm_desktop, window).width > 1000

    await windows.minimize(window)
    assert "Iconic" in xprop(wm_desktop, window, "WM_STATE")
    assert active_window(wm_desktop) != window

    await windows.focus(xterm[1])
    assert active_window(wm_desktop) == xterm[1]
    await windows.focus(window)  # de-iconifies as well
    assert active_window(wm_desktop) == window
    assert "Normal" in xprop(wm_desktop, window, "WM_STATE")
    # A maximized window is restored before it is moved.
    await windows.move(window, 40, 60)
    seen = observed(wm_desktop, window)
    assert (seen.abs_x, seen.abs_y) == (40, 60)
    assert "MAXIMIZED" not in xprop(wm_desktop, window, "_NET_WM_STATE")


async def test_close_is_polite_and_the_app_exits(wm_desktop: DevDesktop, windows: WindowService) -> None:
    proc = start_app(wm_desktop, "xterm", "-T", "to close", "-e", "sleep 60")
    try:
        window = window_of(wm_desktop, proc.pid)
        await windows.close_window(window)
        assert proc.wait(timeout=10) is not None
        wait_until(lambda: window not in wmctrl(wm_desktop), what="the window to go")
        with pytest.raises(NotFound):  # a stale id
            await windows.get(window)
    finally:
        stop_app(proc)


async def test_unknown_and_malformed_ids(windows: WindowService) -> None:
    with pytest.raises(NotFound):
        await windows.get(0x123)
    with pytest.raises(NotFound):
        await windows.focus(0x7FFFFFF)
    with pytest.raises(InvalidArgument):
        await windows.resize(0x123, 0, 10)


async def test_without_a_window_manager_listing_works_and_wm_actions_say_why() -> None:
    with DevDesktop(window_manager=None) as bare:
        proc = start_app(bare, "xterm", "-T", "bare", "-e", "sleep 60")
        service = WindowService.for_display(bare.display)
        try:
            wait_until(lambda: "bare" in observe_titles(bare), timeout=10, what="xterm to map")
            listed = [w for w in await service.list_windows() if w.pid == proc.pid]
            assert [w.title for w in listed] == ["bare"]
            window = listed[0].id
            await service.move(window, 30, 40)  # plain X configure still works
            seen = observed(bare, window)
            assert (seen.abs_x, seen.abs_y) == (30, 40)
            with pytest.raises(WindowManagerUnavailable) as caught:
                await service.maximize(window)
            assert caught.value.status == 503
            assert "no EWMH window manager" in caught.value.message
        finally:
            await service.close()
            stop_app(proc)


def observe_titles(desktop: DevDesktop) -> str:
    return observe(desktop, "xdotool", "search", "--onlyvisible", "--name", ".", "getwindowname", "%@")


async def test_changes_made_by_others_show_in_the_next_listing(
    wm_desktop: DevDesktop, windows: WindowService, zenity: tuple[int, int]
) -> None:
    """The listing is cached between X events; what another client changes must show at once."""
    _, window = zenity
    await windows.list_windows()  # warm the cache
    observe(wm_desktop, "xdotool", "set_window", "--name", "renamed by xdotool ✓", str(window))
    assert (await windows.get(window)).title == "renamed by xdotool ✓"
    before = observed(wm_desktop, window)
    observe(wm_desktop, "wmctrl", "-i", "-r", hex(window), "-e", "0,210,220,-1,-1")
    # wmctrl only asks; compare once the window manager has moved it (xwininfo sees the move).
    wait_until(
        lambda: (
            (observed(wm_desktop, window).abs_x, observed(wm_desktop, window).abs_y)
            != (before.abs_x, before.abs_y)
        ),
        what="the window manager to move the window",
    )
    seen = observed(wm_desktop, window)
    info = await windows.get(window)
    assert (info.x, info.y) == (seen.abs_x, seen.abs_y)
    observe(wm_desktop, "xdotool", "windowsize", "--sync", str(window), "377", "266")
    info = await windows.get(window)
    assert (info.width, info.height) == (377, 266)
    observe(wm_desktop, "xdotool", "windowminimize", "--sync", str(window))
    assert (await windows.get(window)).minimized
    observe(wm_desktop, "wmctrl", "-i", "-a", hex(window))
    wait_until(lambda: active_window(wm_desktop) == window, what="wmctrl to activate")
    info = await windows.get(window)
    assert info.focused and not info.minimized


async def test_pid_of_apps_without_net_wm_pid_comes_from_the_server(
    wm_desktop: DevDesktop, windows: WindowService
) -> None:
    proc = start_app(wm_desktop, "xlogo")
    try:
        window = window_of_class(wm_desktop, "xlogo")
        assert "_NET_WM_PID:  not found" in xprop(wm_desktop, window, "_NET_WM_PID")
        assert (await windows.get(window)).pid == proc.pid
    finally:
        stop_app(proc)


def window_of_class(desktop: DevDesktop, instance: str, timeout: float = 10.0) -> int:
    """The first window ``wmctrl -lx`` lists with this WM_CLASS instance."""

    def listed() -> int | None:
        for line in observe(desktop, "wmctrl", "-lx").splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[2].split(".")[0] == instance:
                return int(parts[0], 16)
        return None

    return wait_until(listed, timeout=timeout, what=f"a {instance} window")


async def test_focus_reaches_a_window_on_another_workspace(
    wm_desktop: DevDesktop, windows: WindowService, zenity: tuple[int, int]
) -> None:
    _, window = zenity
    observe(wm_desktop, "wmctrl", "-i", "-r", hex(window), "-t", "1")
    wait_until(lambda: "= 1" in xprop(wm_desktop, window, "_NET_WM_DESKTOP"), what="the move to workspace 1")
    assert not (await windows.get(window)).minimized  # elsewhere is not minimized
    await windows.focus(window)
    assert active_window(wm_desktop) == window
    observe(wm_desktop, "wmctrl", "-s", "0")  # back to the first workspace for the other tests


async def test_the_window_at_a_point_is_the_application_even_over_another_process_child(
    wm_desktop: DevDesktop, windows: WindowService, xterm: tuple[int, int]
) -> None:
    """Chromium's GPU process draws into a child of the browser's window: a click there is the
    browser's. A point on the WM's title bar belongs to no application window."""
    pid, window = xterm
    seen = observed(wm_desktop, window)
    display = Display(wm_desktop.display)  # this test's process makes the child window
    try:
        child = display.create_resource_object("window", window).create_window(
            0, 0, seen.width, seen.height, 0, X.CopyFromParent
        )
        child.map()
        display.sync()
        # Near the corner: openbox shows its workspace popup in the middle of the screen for a
        # moment after an earlier test switched workspaces.
        hit = await windows.at(seen.abs_x + 10, seen.abs_y + 10)
        assert hit.client is not None and hit.client.id == window
        assert hit.pid == pid != os.getpid()
        title_bar = await windows.at(seen.abs_x + 20, seen.abs_y - 8)
        assert title_bar.client is None and title_bar.pid not in (None, pid)
    finally:
        display.close()
