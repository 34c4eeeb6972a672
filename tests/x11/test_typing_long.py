"""Typing text of any length with far more distinct characters than the layout has spare keys.

The layout lacks every CJK character and emoji, so each must be bound to a spare keycode; there
are about a hundred of those, so long text is typed in rounds that rebind them. What the apps
received (a GTK entry's text, the bytes xterm's ``cat`` wrote) must equal what was sent, also
when someone else changes the layout between two requests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import run_observer, start_agent
from tests.observers import EventLogger
from tests.x11.test_input import XtermCat

ASCII_WORDS = ["Hello", "wOrld", "x=1;", "(a+b)*c", "~`!@#$%^&", "{[|]}", "\\'\"<>?", "_-+/0123"]
EMOJI = [chr(code) for code in range(0x1F600, 0x1F650)]  # 80 distinct emoji


def mixed_text(first_cjk: int, count: int, line: int = 0) -> str:
    """``count`` distinct CJK characters with ASCII words, accented letters and emoji between,
    and a newline after every ``line`` of them (a terminal's line buffer holds 4,095 bytes)."""
    parts: list[str] = []
    for index in range(count):
        if line and index and index % line == 0:
            parts.append("\n")
        parts.append(chr(first_cjk + index))
        if index % 9 == 4:
            parts.append(f" {ASCII_WORDS[index % len(ASCII_WORDS)]} ")
        if index % 13 == 7:
            parts.append(EMOJI[index % len(EMOJI)])
        if index % 17 == 3:
            parts.append("äéøçñß€")
    return "".join(parts)


def type_into_entry(client: httpx.Client, logger: EventLogger, text: str) -> str:
    """Type into the app's entry (which has the focus) and return the text it then holds.

    The click goes to the app's drawing area, not the entry, and is awaited: a window manager
    may replay a focusing click late, and one that lands in the entry mid-typing moves its
    cursor, which would reorder the text for reasons that have nothing to do with typing.
    """
    x, y = logger.area_center
    client.post("/desktop/click", json={"x": x, "y": y}).raise_for_status()
    logger.next("button")
    client.post("/desktop/key", json={"key": "ctrl+a BackSpace"}).raise_for_status()
    answer = client.post("/desktop/type", json={"text": text})
    assert answer.status_code == 200, answer.text
    client.post("/desktop/key", json={"key": "Return"}).raise_for_status()
    return str(logger.next("entry")["text"])


@pytest.fixture()
def layout_restored(desktop: DevDesktop) -> Iterator[None]:
    yield
    run_observer(desktop, "setxkbmap", "us")
    time.sleep(0.3)  # pacing: the apps reload their keymap on MappingNotify, which shows nowhere


def test_300_distinct_cjk_with_ascii_and_emoji_into_a_gtk_entry(
    client: httpx.Client, logger: EventLogger
) -> None:
    text = mixed_text(0x4E00, 300)
    assert len(set(text)) > 350
    assert type_into_entry(client, logger, text) == text


def test_1000_distinct_cjk_with_ascii_and_emoji_into_xterm(
    client: httpx.Client, desktop: DevDesktop, tmp_path: Path
) -> None:
    text = mixed_text(0x5000, 1000, line=100) + "\n" + mixed_text(0x4E00, 50) + "\n"
    assert len(set(text)) > 1000
    xterm = XtermCat(desktop, client, tmp_path / "cjk-1000.txt")
    answer = client.post("/desktop/type", json={"text": text})
    assert answer.status_code == 200, answer.text
    assert xterm.finish(client).decode() == text


def test_the_same_long_text_twice_is_exact_both_times(
    client: httpx.Client, desktop: DevDesktop, tmp_path: Path
) -> None:
    """The second run finds the first run's bindings in place and must not trip over them."""
    text = mixed_text(0x6000, 300, line=100) + "\n"
    xterm = XtermCat(desktop, client, tmp_path / "twice.txt")
    for _ in range(2):
        answer = client.post("/desktop/type", json={"text": text})
        assert answer.status_code == 200, answer.text
    assert xterm.finish(client).decode() == text + text


def test_a_layout_change_by_someone_else_between_two_runs(
    client: httpx.Client, desktop: DevDesktop, logger: EventLogger, layout_restored: None
) -> None:
    # Letters that sit on other keys in the German layout (y/z, symbols) and CJK beyond capacity.
    text = "yz Yz @{[]}\\~|<> " + mixed_text(0x7000, 200)
    assert type_into_entry(client, logger, text) == text
    run_observer(desktop, "setxkbmap", "de")  # no pause: the next request must notice by itself
    assert type_into_entry(client, logger, text) == text
    run_observer(desktop, "setxkbmap", "us")
    assert type_into_entry(client, logger, text + " äöü") == text + " äöü"


def test_keycodes_bound_by_an_earlier_agent_are_reused(
    client: httpx.Client, desktop: DevDesktop, tmp_path: Path
) -> None:
    """An agent restart must not find every spare keycode taken by its predecessor's bindings."""
    home = tmp_path / "earlier"
    home.mkdir()
    earlier = start_agent(dict(desktop.env), home, "--display", desktop.display)
    try:
        with earlier.client() as other:
            text = mixed_text(0x8000, 300, line=100) + "\n"
            xterm = XtermCat(desktop, other, tmp_path / "earlier.txt")
            answer = other.post("/desktop/type", json={"text": text})
            assert answer.status_code == 200, answer.text
            assert xterm.finish(other).decode() == text
    finally:
        earlier.stop()
    # Every spare keycode now holds one of the stopped agent's CJK characters.
    text = mixed_text(0x9000, 300, line=100) + "\n"
    xterm = XtermCat(desktop, client, tmp_path / "later.txt")
    answer = client.post("/desktop/type", json={"text": text})
    assert answer.status_code == 200, answer.text
    assert xterm.finish(client).decode() == text
