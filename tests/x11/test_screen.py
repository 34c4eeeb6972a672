"""Screenshots against the X server's own pixels (xwd), formats, scaling, cursor, regions."""

from __future__ import annotations

import base64
import io
import subprocess
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image, ImageChops
from Xlib import X
from Xlib.display import Display

from agent.session.devdesktop import DevDesktop
from tests.conftest import run_observer
from tests.waiting import wait_until


def xwd_image(desktop: DevDesktop) -> Image.Image:
    """The root window as the X server itself dumps it (xwd), decoded by ImageMagick."""
    dump = subprocess.run(
        ["xwd", "-root", "-silent"], env=desktop.env, capture_output=True, check=True
    ).stdout
    png = subprocess.run(["convert", "xwd:-", "png:-"], input=dump, capture_output=True, check=True).stdout
    return Image.open(io.BytesIO(png)).convert("RGB")


def wait_until_still(desktop: DevDesktop) -> None:
    """Until the terminal is mapped and two dumps of the screen in a row are the same."""
    last: list[bytes] = []

    def still() -> bool:
        if (
            "xterm"
            not in subprocess.run(
                ["xwininfo", "-root", "-tree"],
                env=desktop.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.lower()
        ):
            return False
        now = xwd_image(desktop).tobytes()
        same = last == [now]
        last[:] = [now]
        return same

    wait_until(still, timeout=15, what="the terminal to be drawn and the screen to be still")


@pytest.fixture(scope="module")
def busy_screen(desktop: DevDesktop) -> Iterator[None]:
    """A static, varied screen: a patterned root and a terminal full of text."""
    subprocess.run(
        ["xsetroot", "-mod", "5", "3", "-fg", "#d04020", "-bg", "#2050c0"], env=desktop.env, check=True
    )
    term = subprocess.Popen(
        [
            "xterm",
            "-geometry",
            "100x30+40+40",
            "-fg",
            "black",
            "-bg",
            "#f0f0a0",
            "-e",
            "sh",
            "-c",
            "ls -l /usr/bin | head -28; sleep 120",
        ],
        env=desktop.env,
    )
    try:
        wait_until_still(desktop)
        yield
    finally:
        term.terminate()
        term.wait()
    subprocess.run(["xsetroot", "-solid", "black"], env=desktop.env, check=True)


def image_of(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content)).convert("RGB")


def test_png_equals_the_screen_pixel_for_pixel(
    client: httpx.Client, desktop: DevDesktop, busy_screen: None
) -> None:
    client.post("/desktop/move", json={"x": 1279, "y": 719}).raise_for_status()
    ours = image_of(client.get("/desktop/screenshot"))
    reference = xwd_image(desktop)
    assert ours.size == reference.size == (1280, 720)
    assert ImageChops.difference(ours, reference).getbbox() is None
    assert len(np.unique(np.asarray(ours).reshape(-1, 3), axis=0)) > 3  # the screen really is varied


def test_region_equals_the_same_crop_and_clips_to_the_screen(
    client: httpx.Client, desktop: DevDesktop, busy_screen: None
) -> None:
    reference = xwd_image(desktop)
    response = client.post("/desktop/screenshot/region", json={"x": 30, "y": 50, "width": 400, "height": 300})
    assert ImageChops.difference(image_of(response), reference.crop((30, 50, 430, 350))).getbbox() is None
    clipped = client.post(
        "/desktop/screenshot/region", json={"x": 1200, "y": 600, "width": 500, "height": 500}
    )
    assert image_of(clipped).size == (80, 120)
    assert (
        client.post(
            "/desktop/screenshot/region", json={"x": 1300, "y": 0, "width": 5, "height": 5}
        ).status_code
        == 400
    )


def test_jpeg_and_webp_are_close_to_the_screen(
    client: httpx.Client, desktop: DevDesktop, busy_screen: None
) -> None:
    # Compared on the terminal (text on a flat colour, like real screens); the root's one-pixel
    # red/blue stipple is the worst case for 4:2:0 chroma subsampling and says nothing useful.
    box = (50, 50, 600, 400)
    reference = xwd_image(desktop).crop(box)
    for fmt in ("jpeg", "webp"):
        response = client.get(f"/desktop/screenshot?format={fmt}&quality=90")
        assert response.headers["content-type"] == f"image/{fmt}"
        ours = image_of(response).crop(box)
        mean = float(np.asarray(ImageChops.difference(ours, reference).convert("L")).mean())
        assert mean < 6, (fmt, mean)


def test_scaling_and_base64(client: httpx.Client, busy_screen: None) -> None:
    scaled = image_of(client.get("/desktop/screenshot?scale=0.5"))
    assert scaled.size == (640, 360)
    boxed = client.get("/desktop/screenshot?max_width=800&max_height=800&format=jpeg")
    assert image_of(boxed).size == (800, 450)
    assert boxed.headers["X-Screen-Width"] == "1280" and boxed.headers["X-Screen-Height"] == "720"
    body = client.get("/desktop/screenshot?base64=true&format=png&scale=0.25").json()
    assert (body["format"], body["width"], body["height"]) == ("png", 320, 180)
    assert Image.open(io.BytesIO(base64.b64decode(body["image"]))).size == (320, 180)


def test_cursor_is_drawn_only_when_asked(
    client: httpx.Client, desktop: DevDesktop, busy_screen: None
) -> None:
    client.post("/desktop/move", json={"x": 700, "y": 600}).raise_for_status()
    region = {"x": 680, "y": 580, "width": 60, "height": 60}
    plain = image_of(client.post("/desktop/screenshot/region", json=region))
    with_cursor = image_of(client.post("/desktop/screenshot/region", json={**region, "cursor": True}))
    reference = xwd_image(desktop).crop((680, 580, 740, 640))
    assert ImageChops.difference(plain, reference).getbbox() is None
    changed = ImageChops.difference(with_cursor, plain).getbbox()
    assert changed is not None
    assert (
        changed[0] <= 25 and changed[1] <= 25
    )  # drawn at the pointer (20,20 in the region), hotspot-aligned


def test_a_cursor_whose_owner_has_gone_never_fails_the_screenshot(
    client: httpx.Client, desktop: DevDesktop, busy_screen: None
) -> None:
    """A client that sets the root's cursor and exits leaves a cursor the X server refuses to
    hand out (BadAccess) while the pointer shows it: every ``cursor=true`` screenshot was a 500.
    It is taken without the pointer then; once the pointer shows a live client's cursor (a window
    of this test's own with a cursor of its own), the pointer is drawn again."""
    client.post("/desktop/move", json={"x": 700, "y": 600}).raise_for_status()
    region = {"x": 680, "y": 580, "width": 60, "height": 60}
    image_of(client.post("/desktop/screenshot/region", json=region))
    display = Display(desktop.display)
    try:
        for shape in ("watch", "crosshair"):
            run_observer(desktop, "xsetroot", "-cursor_name", shape)
            for _ in range(3):
                answer = client.post("/desktop/screenshot/region", json={**region, "cursor": True})
                assert answer.status_code == 200, answer.text
        font = display.open_font("cursor")
        hand = font.create_glyph_cursor(font, 60, 61, (0, 0, 0), (0xFFFF, 0xFFFF, 0xFFFF))  # XC_hand2
        window = display.screen().root.create_window(
            650,
            550,
            120,
            120,
            0,
            display.screen().root_depth,
            override_redirect=True,
            cursor=hand,
            background_pixel=display.screen().white_pixel,
        )
        window.map()
        display.sync()
        under_window = xwd_image(desktop).crop((680, 580, 740, 640))
        drawn = wait_until(
            lambda: ImageChops.difference(
                image_of(client.post("/desktop/screenshot/region", json={**region, "cursor": True})),
                under_window,
            ).getbbox(),
            timeout=5,
            what="the pointer drawn over the window with a cursor of a live client",
        )
        assert drawn[0] <= 25 and drawn[1] <= 25  # at the pointer (20,20 in the region)
    finally:  # the root's cursor back to the server's own (xsetroot's would stay unreadable)
        display.screen().root.change_attributes(cursor=X.NONE)
        display.sync()
        display.close()
