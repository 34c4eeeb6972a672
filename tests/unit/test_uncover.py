"""Which X window is an element's window: by its process, then its title or its rectangle."""

from __future__ import annotations

from agent.a11y.elements import Toplevel
from agent.a11y.node import Extents as Box
from agent.actions.uncover import is_window_of
from agent.x11.window_list import Extents, WindowInfo

NO_FRAME = Extents()


def window(
    title: str, x: int, y: int, width: int, height: int, *, frame: Extents = NO_FRAME, pid: int = 7
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
    decorated = window("", 551, 329, 188, 120, frame=Extents(left=5, right=5, top=29, bottom=5))
    assert is_window_of(decorated, Toplevel(7, "", Box(546, 300, 198, 154)))
    assert not is_window_of(decorated, Toplevel(7, "", Box(0, 0, 198, 154)))


def test_the_client_rectangle_identifies_a_window_that_draws_its_own_decorations() -> None:
    assert is_window_of(window("gtk3-widget-factory", 0, 0, 1366, 741), Toplevel(7, "", Box(0, 0, 1366, 741)))


def test_a_different_title_and_place_is_another_window() -> None:
    about = window("About GTK Widget Factory", 467, 243, 452, 371)
    assert not is_window_of(about, Toplevel(7, "", Box(0, 0, 1366, 741)))
    assert not is_window_of(about, Toplevel(7, "Widget Factory", None))
