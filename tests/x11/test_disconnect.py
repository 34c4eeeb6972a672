"""Work dies with its client (issue 11, finding 6): a /batch whose client left releases the input
lock and every key and button it held, observed in the X server's own state (QueryKeymap,
QueryPointer) by a separate X client, not by asking the agent."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from Xlib import XK, X
from Xlib.display import Display

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent
from tests.raw_http import send_raw
from tests.waiting import wait_until

WAITS = 10  # x 30 s: the batch would hold the input lock for five minutes
BUTTON_MASKS = X.Button1Mask | X.Button2Mask | X.Button3Mask | X.Button4Mask | X.Button5Mask


@pytest.fixture()
def xserver(desktop: DevDesktop) -> Iterator[Display]:
    display = Display(desktop.display)
    yield display
    display.close()


def held(display: Display) -> tuple[bool, bool]:
    """(Shift_L is down, any mouse button is down), as the X server sees it."""
    keycode = display.keysym_to_keycode(XK.string_to_keysym("Shift_L"))
    keymap = display.query_keymap()
    shift = bool(keymap[keycode // 8] & (1 << (keycode % 8)))
    buttons = bool(display.screen().root.query_pointer().mask & BUTTON_MASKS)
    return shift, buttons


def test_a_batch_whose_client_left_releases_lock_keys_and_buttons(
    agent: RunningAgent, client: httpx.Client, xserver: Display
) -> None:
    actions: list[dict[str, object]] = [
        {"type": "move", "x": 5, "y": 5},
        {"type": "key_down", "key": "shift"},
        {"type": "mouse_down", "button": "left"},
    ]
    actions += [{"type": "wait", "seconds": 30}] * WAITS
    sock = send_raw(agent, "/batch", {"actions": actions})
    try:
        # The batch really runs and holds input (else the test proves nothing).
        wait_until(lambda: held(xserver) == (True, True), timeout=10, what="shift and the button held")
    finally:
        sock.close()  # the client goes away in the middle of the first wait
    gone = time.monotonic()
    # Everything it held is released, as the X server sees it.
    wait_until(lambda: held(xserver) == (False, False), timeout=10, what="shift and the button released")
    # And the input lock is free: the next click is answered long before the batch would have ended.
    answer = client.post("/desktop/click", json={"x": 5, "y": 5}, timeout=60)
    assert answer.status_code == 200
    assert time.monotonic() - gone < WAITS * 30 / 5
    assert held(xserver) == (False, False)
