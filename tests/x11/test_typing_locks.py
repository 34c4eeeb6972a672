"""Typing is exact whatever Caps Lock and Num Lock say, and leaves them as it found them.

The locks are switched with xdotool (its own XTest client) and read back with ``xset q`` (the
server's LED mask); what arrived is read from a GTK entry and from the file an xterm's ``cat``
writes, never from the agent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from Xlib import XK, X
from Xlib.display import Display
from Xlib.ext import xtest

from agent.session.devdesktop import DevDesktop
from tests.conftest import run_observer
from tests.observers import EventLogger
from tests.x11.test_input import XtermCat

XK.load_keysym_group("xkb")  # ISO_Next_Group

CAPS_LED, NUM_LED = 0x1, 0x2
LOCK_KEYS = {CAPS_LED: "Caps_Lock", NUM_LED: "Num_Lock"}
# Upper and lower case, digits, the characters the keypad also has (*/-+.), other punctuation,
# Latin-1 with accents in both cases, non-Latin letters in both cases, CJK.
LINE_ONE = "Hello World é É 0123456789 7.5*2/4+1-0=12 !@#$%^&()_[]{};:'\",<>?\\|`~"
LINE_TWO = "Ωμέγα Жук ß 日本 ÀÇÑ end"
MIXED_TEXT = f"{LINE_ONE}\n{LINE_TWO}"


def led_mask(desktop: DevDesktop) -> int:
    """The keyboard LEDs as the X server reports them (Caps Lock 1, Num Lock 2)."""
    match = re.search(r"LED mask:\s+([0-9a-fA-F]+)", run_observer(desktop, "xset", "q"))
    assert match is not None
    return int(match.group(1), 16)


def set_leds(desktop: DevDesktop, wanted: int) -> None:
    """Toggle Caps Lock / Num Lock with xdotool until the LED mask shows ``wanted``."""
    for led, key in LOCK_KEYS.items():
        if bool(led_mask(desktop) & led) != bool(wanted & led):
            run_observer(desktop, "xdotool", "key", key)
    assert led_mask(desktop) & (CAPS_LED | NUM_LED) == wanted


@pytest.fixture()
def locks(desktop: DevDesktop) -> Iterator[None]:
    yield
    set_leds(desktop, 0)  # whatever a failing test left, the next one starts unlocked


LOCK_STATES = pytest.mark.parametrize(
    "leds", [CAPS_LED, NUM_LED, CAPS_LED | NUM_LED], ids=["caps-lock", "num-lock", "caps-and-num-lock"]
)


def focus_entry(client: httpx.Client, logger: EventLogger) -> None:
    entry_point = (logger.ready["area_x"] + 50, logger.ready["area_y"] - 15)
    client.post("/desktop/click", json={"x": entry_point[0], "y": entry_point[1]}).raise_for_status()
    logger.drain()


@LOCK_STATES
def test_typing_into_gtk_entry_is_exact_under_locks(
    client: httpx.Client, desktop: DevDesktop, logger: EventLogger, locks: None, leds: int
) -> None:
    focus_entry(client, logger)
    set_leds(desktop, leds)
    client.post("/desktop/type", json={"text": MIXED_TEXT}).raise_for_status()
    # The newline is Return, which makes the entry report its text; the second line follows.
    assert logger.next("entry")["text"] == LINE_ONE
    assert led_mask(desktop) == leds
    client.post("/desktop/type", json={"text": "\n"}).raise_for_status()
    assert logger.next("entry")["text"] == LINE_ONE + LINE_TWO
    assert led_mask(desktop) == leds


@LOCK_STATES
def test_typing_into_xterm_is_byte_exact_under_locks(
    client: httpx.Client, desktop: DevDesktop, tmp_path: Path, locks: None, leds: int
) -> None:
    xterm = XtermCat(desktop, client, tmp_path / f"locked-{leds}.txt")
    set_leds(desktop, leds)
    long_text = MIXED_TEXT + "\n" + "Mixed Case 42 " * 30 + "\n"  # several chunks of keys
    client.post("/desktop/type", json={"text": long_text}).raise_for_status()
    assert led_mask(desktop) == leds
    set_leds(desktop, 0)  # ctrl+d must reach cat as ctrl+d whatever this test is about
    assert xterm.finish(client).decode() == long_text


def test_named_keys_are_exact_under_caps_lock(
    client: httpx.Client, desktop: DevDesktop, logger: EventLogger, locks: None
) -> None:
    focus_entry(client, logger)
    set_leds(desktop, CAPS_LED)
    client.post("/desktop/key", json={"key": "H i shift+1 a"}).raise_for_status()
    client.post("/desktop/key", json={"key": "Return"}).raise_for_status()
    assert logger.next("entry")["text"] == "Hi!a"
    assert led_mask(desktop) == CAPS_LED


def test_a_key_sequence_with_a_lock_key_toggles_it(
    client: httpx.Client, desktop: DevDesktop, locks: None
) -> None:
    set_leds(desktop, 0)
    client.post("/desktop/key", json={"key": "Caps_Lock"}).raise_for_status()
    assert led_mask(desktop) == CAPS_LED
    client.post("/desktop/key", json={"key": "capslock"}).raise_for_status()
    assert led_mask(desktop) == 0


def test_a_held_shift_stays_the_callers_choice(
    client: httpx.Client, desktop: DevDesktop, logger: EventLogger, locks: None
) -> None:
    focus_entry(client, logger)
    set_leds(desktop, CAPS_LED)
    client.post("/desktop/key-down", json={"key": "shift"}).raise_for_status()
    try:
        client.post("/desktop/type", json={"text": "Ab1"}).raise_for_status()
        # Still held after typing: a click reports Shift.
        x, y = logger.area_center
        client.post("/desktop/click", json={"x": x, "y": y}).raise_for_status()
        presses = [e for e in logger.collect() if e["event"] == "button" and e["kind"] == "press"]
        assert presses and all(press["shift"] for press in presses)
    finally:
        client.post("/desktop/key-up", json={"key": "shift"}).raise_for_status()
    logger.collect()  # the app has seen Shift released (it answers its sync after)
    focus_entry(client, logger)
    client.post("/desktop/key", json={"key": "End Return"}).raise_for_status()
    # Shift held over every key: the layout's Shift level, not Caps Lock's inversion of it.
    assert logger.next("entry")["text"] == "AB!"
    assert led_mask(desktop) == CAPS_LED


@pytest.fixture()
def shift_lock(desktop: DevDesktop, locks: None) -> Iterator[None]:
    """Caps_Lock acting as Shift Lock (every key shifted, digits too), as setxkbmap sets it."""
    run_observer(desktop, "setxkbmap", "-layout", "us", "-option", "caps:shiftlock")
    time.sleep(0.3)  # pacing: the apps reload their keymap on MappingNotify, which shows nowhere
    try:
        yield
    finally:
        set_leds(desktop, 0)
        run_observer(desktop, "setxkbmap", "-layout", "us", "-option", "")
        assert "options" not in run_observer(desktop, "setxkbmap", "-query")
        time.sleep(0.3)  # pacing: the apps reload their keymap on MappingNotify, which shows nowhere


def test_typing_is_exact_under_shift_lock(
    client: httpx.Client, desktop: DevDesktop, logger: EventLogger, tmp_path: Path, shift_lock: None
) -> None:
    """Shift Lock lights no LED; xdotool's plain "a" after our text shows it is still locked."""
    focus_entry(client, logger)
    run_observer(desktop, "xdotool", "key", "Shift_Lock")
    client.post("/desktop/type", json={"text": LINE_ONE}).raise_for_status()
    run_observer(desktop, "xdotool", "key", "a", "Shift_Lock")  # "A" under Shift Lock, then unlock
    client.post("/desktop/key", json={"key": "Return"}).raise_for_status()
    assert logger.next("entry")["text"] == LINE_ONE + "A"

    xterm = XtermCat(desktop, client, tmp_path / "shift-lock.txt")
    run_observer(desktop, "xdotool", "key", "Shift_Lock")
    client.post("/desktop/type", json={"text": MIXED_TEXT + "\n"}).raise_for_status()
    run_observer(desktop, "xdotool", "key", "a", "Return", "Shift_Lock")
    assert xterm.finish(client).decode() == MIXED_TEXT + "\nA\n"


@pytest.fixture()
def sticky_keys(desktop: DevDesktop) -> Iterator[None]:
    """Sticky keys on (xkbset): a Shift pressed and released alone is latched for the next key."""
    run_observer(desktop, "xkbset", "sticky", "-twokey", "-latchlock")
    try:
        yield
    finally:
        run_observer(desktop, "xkbset", "-sticky")


def test_typing_is_exact_with_a_latched_shift_and_leaves_it_latched(
    client: httpx.Client, desktop: DevDesktop, logger: EventLogger, sticky_keys: None
) -> None:
    focus_entry(client, logger)
    run_observer(desktop, "xdotool", "key", "Shift_L")  # latches Shift
    client.post("/desktop/type", json={"text": "hello World é 123"}).raise_for_status()
    # The latch is back: xdotool's next plain "a" comes out shifted, and uses the latch up.
    run_observer(desktop, "xdotool", "key", "a")
    client.post("/desktop/key", json={"key": "Return"}).raise_for_status()
    assert logger.next("entry")["text"] == "hello World é 123A"


def press_keys_from_outside(desktop: DevDesktop, *keysym_names: str) -> None:
    """Press and release keys with XTest from the test's own connection (xdotool would switch
    the layout group back around its keys, which is the very state under test here)."""
    display = Display(desktop.display)
    try:
        for name in keysym_names:
            keycode = display.keysym_to_keycode(XK.string_to_keysym(name))
            assert keycode, name
            xtest.fake_input(display, X.KeyPress, keycode)
            xtest.fake_input(display, X.KeyRelease, keycode)
        display.sync()
    finally:
        display.close()


@pytest.fixture()
def two_layouts(desktop: DevDesktop) -> Iterator[None]:
    """us and ru, Caps Lock switching between them (the group is locked, not held)."""
    run_observer(desktop, "setxkbmap", "-layout", "us,ru", "-option", "grp:caps_toggle")
    time.sleep(0.3)  # pacing: the apps reload their keymap on MappingNotify, which shows nowhere
    try:
        yield
    finally:
        run_observer(desktop, "setxkbmap", "-layout", "us", "-option", "")
        time.sleep(0.3)  # pacing: the apps reload their keymap on MappingNotify, which shows nowhere


def test_typing_is_exact_with_the_second_layout_locked_and_leaves_it_locked(
    client: httpx.Client, desktop: DevDesktop, logger: EventLogger, two_layouts: None
) -> None:
    focus_entry(client, logger)
    press_keys_from_outside(desktop, "ISO_Next_Group")  # the Russian layout is on
    client.post("/desktop/type", json={"text": "Hello World é 1"}).raise_for_status()
    # Still on: the key that is "a" in the first layout types "ф"; then back to the first layout.
    press_keys_from_outside(desktop, "a", "ISO_Next_Group")
    client.post("/desktop/key", json={"key": "Return"}).raise_for_status()
    assert logger.next("entry")["text"] == "Hello World é 1ф"
