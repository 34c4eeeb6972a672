"""The unchanged-screen cache: identical screenshots of an unchanged region come back as the same
bytes (``X-Screenshot-Cache: hit``); any change there, made by another X client (xsetroot, a
window of this test's own X connection, xdotool moving the pointer), shows in the next one.
Pixels are checked against the X server's own dump (xwd)."""

from __future__ import annotations

import io
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageChops
from Xlib.display import Display

from agent.session.devdesktop import DevDesktop
from tests.conftest import run_observer, start_agent, stop_process
from tests.displays import free_display_number
from tests.waiting import wait_until
from tests.x11.test_capture_recovery import Server
from tests.x11.test_recovery import start_xvfb
from tests.x11.test_screen import xwd_image

REGION = {"x": 100, "y": 100, "width": 300, "height": 200}
CROP = (100, 100, 400, 300)


def shot(client: httpx.Client, **options: object) -> httpx.Response:
    response = client.post("/desktop/screenshot/region", json={**REGION, "format": "png", **options})
    assert response.status_code == 200, response.text
    return response


def image_of(response: httpx.Response) -> Image.Image:
    return Image.open(io.BytesIO(response.content)).convert("RGB")


def cache_of(response: httpx.Response) -> str:
    return response.headers["X-Screenshot-Cache"]


def until_hit(client: httpx.Client, **options: object) -> httpx.Response:
    """Ask until the answer comes from the cache (the first request arms the monitor)."""
    return wait_until(
        lambda: (response := shot(client, **options)).headers["X-Screenshot-Cache"] == "hit" and response,
        timeout=10,
        what="a screenshot served from the cache",
    )


@pytest.fixture()
def plain_root(desktop: DevDesktop) -> Iterator[None]:
    run_observer(desktop, "xsetroot", "-solid", "#204060")
    yield
    run_observer(desktop, "xsetroot", "-solid", "black")


@pytest.fixture()
def x(desktop: DevDesktop) -> Iterator[Display]:
    display = Display(desktop.display)
    yield display
    display.close()


def painted_window(display: Display, x: int, y: int, rgb: int) -> object:
    """An override-redirect window of one colour (the window manager leaves it alone)."""
    screen = display.screen()
    window = screen.root.create_window(
        x, y, 80, 60, 0, screen.root_depth, background_pixel=rgb, override_redirect=True
    )
    window.map()
    display.sync()
    return window


def test_an_unchanged_region_comes_back_identical_and_a_change_shows(
    client: httpx.Client, desktop: DevDesktop, plain_root: None
) -> None:
    first = until_hit(client)
    again = shot(client)
    assert cache_of(again) == "hit" and again.content == first.content
    assert ImageChops.difference(image_of(again), xwd_image(desktop).crop(CROP)).getbbox() is None
    for colour in ("#a07010", "#10a070", "#7010a0", "#204060"):  # asked right after each change
        run_observer(desktop, "xsetroot", "-solid", colour)
        changed = shot(client)
        assert cache_of(changed) == "miss", colour
        expected = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        pixels = np.asarray(image_of(changed)).reshape(-1, 3)
        assert (pixels == expected).all(), (colour, np.unique(pixels, axis=0)[:3])


def test_a_change_elsewhere_keeps_it_a_change_inside_ends_it(
    client: httpx.Client, desktop: DevDesktop, plain_root: None, x: Display
) -> None:
    first = until_hit(client)
    window = painted_window(x, 700, 450, 0xFF0000)  # far from the region
    try:
        time.sleep(0.2)  # the monitor has long reported it
        kept = shot(client)
        assert cache_of(kept) == "hit" and kept.content == first.content
        window.configure(x=150, y=150)  # type: ignore[attr-defined]
        x.sync()
        moved = shot(client)
        assert cache_of(moved) == "miss"
        assert image_of(moved).getpixel((60, 60)) == (255, 0, 0)  # the window, at 150,150 on screen
        assert ImageChops.difference(image_of(moved), xwd_image(desktop).crop(CROP)).getbbox() is None
    finally:
        window.destroy()  # type: ignore[attr-defined]
        x.sync()
    gone = shot(client)
    assert cache_of(gone) == "miss" and image_of(gone).getpixel((60, 60)) == (0x20, 0x40, 0x60)


def test_each_set_of_options_is_its_own_image(client: httpx.Client, plain_root: None) -> None:
    png = until_hit(client)
    jpeg = shot(client, format="jpeg")
    assert jpeg.headers["content-type"] == "image/jpeg" and cache_of(jpeg) == "miss"
    half = shot(client, scale=0.5)
    assert image_of(half).size == (150, 100) and cache_of(half) == "miss"
    assert shot(client).content == png.content


def test_with_the_cursor_drawn_a_pointer_move_ends_it(
    client: httpx.Client, desktop: DevDesktop, plain_root: None
) -> None:
    run_observer(desktop, "xdotool", "mousemove", "150", "150")
    first = until_hit(client, cursor=True)
    assert ImageChops.difference(image_of(first), xwd_image(desktop).crop(CROP)).getbbox() is not None
    run_observer(desktop, "xdotool", "mousemove", "300", "250")
    moved = shot(client, cursor=True)
    assert cache_of(moved) == "miss"
    drawn = ImageChops.difference(image_of(moved), xwd_image(desktop).crop(CROP)).getbbox()
    assert drawn is not None and drawn[0] >= 190 and drawn[1] >= 140  # at 300,250 now, not 150,150
    run_observer(desktop, "xdotool", "mousemove", "900", "600")  # out of the way of other tests


def test_full_screen_screenshots_are_kept_too(
    client: httpx.Client, desktop: DevDesktop, plain_root: None
) -> None:
    first = wait_until(
        lambda: (
            (r := client.get("/desktop/screenshot?format=png")).headers["X-Screenshot-Cache"] == "hit" and r
        ),
        timeout=10,
        what="a full-screen screenshot served from the cache",
    )
    assert ImageChops.difference(image_of(first), xwd_image(desktop)).getbbox() is None
    run_observer(desktop, "xsetroot", "-solid", "#603020")
    changed = client.get("/desktop/screenshot?format=png")
    assert cache_of(changed) == "miss"
    assert ImageChops.difference(image_of(changed), xwd_image(desktop)).getbbox() is None


@contextmanager
def own_server(tmp_path: Path) -> Iterator[tuple[Server, dict[str, str], Callable[[], httpx.Response]]]:
    """An Xvfb of this test's own (to kill or resize) with the root painted, an agent on it, and
    a full-screen PNG screenshot once one has come from the cache."""
    number = free_display_number()
    env = dict(os.environ, DISPLAY=f":{number}")
    server = Server(number, start_xvfb(number), start_agent(env, tmp_path, "--display", f":{number}"))
    try:
        with server.agent.client() as client:
            subprocess.run(["xsetroot", "-solid", "#306090"], env=env, check=True)

            def full() -> httpx.Response:
                return client.get("/desktop/screenshot?format=png")

            first = wait_until(
                lambda: (r := full()).status_code == 200 and cache_of(r) == "hit" and r,
                timeout=10,
                what="a cached screenshot",
            )
            assert image_of(first).getpixel((5, 5)) == (0x30, 0x60, 0x90)
            yield server, env, full
    finally:
        server.agent.stop()
        stop_process(server.xvfb)


def test_a_restarted_x_server_is_grabbed_afresh(tmp_path: Path) -> None:
    """The same display number, the same screen size, another server: nothing kept survives."""
    with own_server(tmp_path) as (server, env, full):
        server.kill()
        while (away := full()).status_code == 200:  # until the agent notices (a stale hit is none)
            assert cache_of(away) == "miss"
        server.restart()
        back = wait_until(lambda: (r := full()).status_code == 200 and r, timeout=10, what="the display back")
        assert image_of(back).getpixel((5, 5)) == (0, 0, 0)  # the new server's root, not the image kept
        subprocess.run(["xsetroot", "-solid", "#309060"], env=env, check=True)
        assert image_of(full()).getpixel((5, 5)) == (0x30, 0x90, 0x60)
        again = wait_until(
            lambda: (r := full()).status_code == 200 and cache_of(r) == "hit" and r,
            timeout=10,
            what="a cached screenshot of the new server",
        )
        assert image_of(again).getpixel((5, 5)) == (0x30, 0x90, 0x60)


def test_a_resized_screen_is_grabbed_afresh(tmp_path: Path) -> None:
    """Shrinking the screen (RandR) draws nothing, growing it draws only the new part; yet the
    first screenshot after either has the new size, and so does every one after it."""
    with own_server(tmp_path) as (_, env, full):
        for width, height in [(640, 480), (800, 600), (720, 500), (800, 600)]:
            # xrandr resizes the screen, then fails to fit its one output into it (exit 1).
            subprocess.run(["xrandr", "--fb", f"{width}x{height}"], env=env, capture_output=True, check=False)
            dimensions = subprocess.run(
                ["xdpyinfo"], env=env, capture_output=True, text=True, check=True
            ).stdout
            assert f"{width}x{height} pixels" in dimensions, "the X server did not resize"
            for _ in range(5):
                response = full()
                assert response.status_code == 200, response.text
                assert image_of(response).size == (width, height), cache_of(response)
                assert response.headers["X-Screen-Width"] == str(width)
                assert response.headers["X-Screen-Height"] == str(height)


def _shared_segments(pid: int) -> int:
    """Shared mappings of memory files or System V segments in process ``pid`` (the MIT-SHM
    segment the X server writes screenshots into), as the kernel lists them."""
    count = 0
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[1].endswith("s") and ("/memfd:" in fields[5] or "/SYSV" in fields[5]):
            count += 1
    return count


def _memory_files(pid: int) -> int:
    """Open descriptors of memory files (the segment's, the JPEG encoder's)."""
    fds = Path(f"/proc/{pid}/fd")
    return sum(os.readlink(fd).startswith("/memfd:") for fd in fds.iterdir() if fd.is_symlink())


def test_an_idle_capture_lets_its_shared_memory_go_and_the_next_screenshot_is_whole(
    desktop: DevDesktop, tmp_path: Path
) -> None:
    agent = start_agent(
        dict(desktop.env), tmp_path, "--display", desktop.display, "--capture-idle-seconds", "1"
    )
    try:
        pid = agent.process.pid
        with agent.client() as client:
            assert shot(client, format="png").status_code == 200
            assert shot(client, format="jpeg").status_code == 200
            assert _shared_segments(pid) == 1  # MIT-SHM: the screen's segment is attached
            assert _memory_files(pid) >= 1
            wait_until(lambda: _shared_segments(pid) == 0, timeout=10, what="the segment released when idle")
            time.sleep(3)  # readiness polls meanwhile: it does not attach a segment again
            assert _shared_segments(pid) == 0
            assert _memory_files(pid) == 0
            again = shot(client, format="png")
            expected = xwd_image(desktop).crop(CROP)
            assert ImageChops.difference(image_of(again), expected).getbbox() is None
            assert _shared_segments(pid) == 1
    finally:
        agent.stop()
