"""The clipboard, both ways with xclip, into a GTK entry with ctrl+v, and with a hung owner."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from Xlib import X
from Xlib.display import Display

from agent.errors import DeadlineExceeded
from agent.session.devdesktop import DevDesktop
from agent.x11.clipboard import ClipboardService
from tests.waiting import wait_until
from tests.x11.windowing import active_window, start_app, stop_app, window_of

UNICODE = "héllo wörld \u2013 日本語 😀\n\tzweite Zeile ñß€"
MEDIUM = ("ünï ✓ 0123456789 " * 20_000)[:150_000]  # 150 k characters, ~190 KB of UTF-8
BIG = ("äbc✓ 0123456789 " * 400_000)[:5_000_000]  # 5 M characters, ~7 MB of UTF-8


def xclip_out(desktop: DevDesktop, target: str | None = None) -> bytes:
    argv = ["xclip", "-o", "-selection", "clipboard", *(["-t", target] if target else [])]
    return subprocess.run(argv, env=desktop.env, capture_output=True, timeout=30, check=True).stdout


@pytest.fixture()
def xclip_owner(desktop: DevDesktop) -> Iterator[Callable[[str], None]]:
    """Make xclip own the clipboard with some text (it serves it until it exits)."""
    procs: list[subprocess.Popen[bytes]] = []

    def own(text: str) -> None:
        proc = subprocess.Popen(
            ["xclip", "-i", "-selection", "clipboard", "-quiet"],
            env=desktop.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None
        proc.stdin.write(text.encode())
        proc.stdin.close()
        procs.append(proc)
        wait_until(  # xclip owns the selection once it has read stdin
            lambda: xclip_out(desktop)[:16] == text.encode()[:16],
            timeout=10,
            what="xclip to own the selection",
        )

    yield own
    for proc in procs:
        stop_app(proc)


def test_set_is_pasted_by_xclip(desktop: DevDesktop, client: httpx.Client) -> None:
    assert client.post("/desktop/clipboard", json={"text": UNICODE}).json() == {"success": True}
    assert xclip_out(desktop).decode() == UNICODE
    assert xclip_out(desktop, "text/plain;charset=utf-8").decode() == UNICODE
    assert xclip_out(desktop, "STRING") == UNICODE.encode("latin-1", "replace")
    targets = xclip_out(desktop, "TARGETS").decode().split()
    assert {"TARGETS", "UTF8_STRING", "STRING", "TEXT", "text/plain;charset=utf-8"} <= set(targets)
    assert client.get("/desktop/clipboard").json() == {"text": UNICODE}


def test_get_reads_what_xclip_owns(
    desktop: DevDesktop, client: httpx.Client, xclip_owner: Callable[[str], None]
) -> None:
    xclip_owner("from xclip ✓ ünïcode")
    assert client.get("/desktop/clipboard").json() == {"text": "from xclip ✓ ünïcode"}


def owner_sends_incrementally(desktop: DevDesktop) -> bool:
    """Whether the clipboard's owner answers a UTF8_STRING request with INCR: asked with a
    requestor of our own (python-xlib), not through the agent. An INCR answer is left unread
    (the owner then waits on it for a while): ask only where the answer should be no."""
    display = Display(desktop.display)
    try:
        window = display.screen().root.create_window(0, 0, 1, 1, 0, X.CopyFromParent)
        prop = display.intern_atom("PROBE_SELECTION")
        window.convert_selection(
            display.intern_atom("CLIPBOARD"), display.intern_atom("UTF8_STRING"), prop, X.CurrentTime
        )
        display.flush()
        while (event := display.next_event()).type != X.SelectionNotify:
            pass
        assert event.property == prop, "the owner refused UTF8_STRING"
        reply = window.get_property(prop, X.AnyPropertyType, 0, 0, False)
        return bool(reply.property_type == display.intern_atom("INCR"))
    finally:
        display.close()


def test_another_apps_text_between_64_kib_and_incr_is_read_whole(
    desktop: DevDesktop, client: httpx.Client, xclip_owner: Callable[[str], None]
) -> None:
    """Above 64 KiB (65,536 characters: a read cut there fails) and below the size where xclip
    switches to INCR: one property, read in one piece."""
    xclip_owner(MEDIUM)
    assert not owner_sends_incrementally(desktop)
    text = client.get("/desktop/clipboard").json()["text"]
    assert (len(text), text == MEDIUM) == (len(MEDIUM), True)


def test_five_megabytes_round_trip_exactly_both_ways(
    desktop: DevDesktop,
    client: httpx.Client,
    xclip_owner: Callable[[str], None],
) -> None:
    assert client.post("/desktop/clipboard", json={"text": BIG}).status_code == 200
    assert xclip_out(desktop).decode() == BIG  # INCR from us
    xclip_owner(BIG[::-1])
    assert client.get("/desktop/clipboard").json()["text"] == BIG[::-1]  # INCR to us


def test_ctrl_v_pastes_into_a_gtk_entry(desktop: DevDesktop, client: httpx.Client) -> None:
    proc = start_app(desktop, "zenity", "--entry", "--title", "paste here")
    try:
        window = window_of(desktop, proc.pid)
        text = "pasted ✓ from the agent"
        assert client.post("/desktop/clipboard", json={"text": text}).status_code == 200
        assert client.post("/desktop/window/focus", json={"window_id": hex(window)}).status_code == 200
        wait_until(
            lambda: active_window(desktop) == window,
            what="the entry's window to take the focus",
        )
        assert client.post("/desktop/key", json={"key": "ctrl+v"}).status_code == 200
        assert client.post("/desktop/key", json={"key": "Return"}).status_code == 200
        out, _ = proc.communicate(timeout=10)
        assert out.decode().rstrip("\n") == text
    finally:
        stop_app(proc)


def test_empty_clipboard_reads_as_empty_text(desktop: DevDesktop) -> None:
    # Our own service on a fresh display where nobody owns CLIPBOARD.
    import asyncio

    with DevDesktop(window_manager=None, session_bus=False) as bare:

        async def read() -> str:
            service = ClipboardService(bare.display)
            try:
                return await service.get_text()
            finally:
                await service.close()

        assert asyncio.run(read()) == ""


async def test_a_hung_owner_costs_a_timeout_not_a_hang(desktop: DevDesktop) -> None:
    hung = Display(desktop.display)  # owns CLIPBOARD and never answers a request
    window = hung.screen().root.create_window(0, 0, 1, 1, 0, X.CopyFromParent)
    window.set_selection_owner(hung.intern_atom("CLIPBOARD"), X.CurrentTime)
    hung.sync()
    service = ClipboardService(desktop.display, read_timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await service.get_text()
        assert time.monotonic() - started < 2
        # ...and the service still works afterwards.
        await service.set_text("after the hang")
        assert xclip_out(desktop).decode() == "after the hang"
    finally:
        await service.close()
        hung.close()


async def test_the_clipboard_outlives_the_agent_with_a_clipboard_manager() -> None:
    """On close the agent hands its clipboard to the CLIPBOARD_MANAGER (xfsettingsd here), which
    copies it with a MULTIPLE request; xclip still pastes it afterwards."""
    with DevDesktop(window_manager="xfwm4") as xfce:
        manager = subprocess.Popen(
            ["xfsettingsd", "--no-daemon", "--replace"],
            env=xfce.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            probe = Display(xfce.display)
            wait_until(
                lambda: probe.get_selection_owner(probe.intern_atom("CLIPBOARD_MANAGER")),
                timeout=10,
                what="xfsettingsd to own CLIPBOARD_MANAGER",
            )
            probe.close()
            service = ClipboardService(xfce.display)
            await service.set_text(UNICODE)
            await service.close()
            assert xclip_out(xfce).decode() == UNICODE
        finally:
            manager.terminate()
            manager.wait(10)


def test_primary_selection_both_ways(desktop: DevDesktop, client: httpx.Client) -> None:
    assert (
        client.post("/desktop/clipboard", json={"text": "primary ✓", "selection": "primary"}).status_code
        == 200
    )
    primary = subprocess.run(
        ["xclip", "-o", "-selection", "primary"], env=desktop.env, capture_output=True, timeout=10, check=True
    ).stdout
    assert primary.decode() == "primary ✓"
    assert client.post("/desktop/clipboard", json={"text": "clipboard ✓"}).status_code == 200
    # Two selections, two texts.
    assert client.get("/desktop/clipboard", params={"selection": "primary"}).json() == {"text": "primary ✓"}
    assert client.get("/desktop/clipboard").json() == {"text": "clipboard ✓"}
    proc = subprocess.Popen(
        ["xclip", "-i", "-selection", "primary", "-quiet"],
        env=desktop.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"selected by xclip")
        proc.stdin.close()
        wait_until(
            lambda: (
                client.get("/desktop/clipboard", params={"selection": "primary"}).json()["text"]
                == "selected by xclip"
            ),
            timeout=10,
            what="xclip to own PRIMARY",
        )
        assert client.get("/desktop/clipboard", params={"selection": "primary"}).json() == {
            "text": "selected by xclip"
        }
        assert client.get("/desktop/clipboard").json() == {"text": "clipboard ✓"}
    finally:
        stop_app(proc)
    answer = client.get("/desktop/clipboard", params={"selection": "secondary"})
    assert answer.status_code == 400
