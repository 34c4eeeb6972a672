"""Wallpaper from data, file and http URLs, seen in the root window's pixels (ImageMagick import)."""

from __future__ import annotations

import base64
import http.server
import io
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from PIL import Image

from agent.devdesktop import DevDesktop
from agent.errors import PayloadTooLarge
from agent.exec.user import resolve_user
from agent.x11.wallpaper import WallpaperService
from tests.x11.windowing import observe

pytestmark = pytest.mark.x11

CORNER = (3, 3)  # a spot no test window covers


def image_bytes(color: tuple[int, int, int], fmt: str = "PNG", size: tuple[int, int] = (64, 36)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def root_pixel(desktop: DevDesktop, point: tuple[int, int] = CORNER) -> tuple[int, int, int]:
    """The screen as ImageMagick's ``import -window root`` captures it."""
    png = subprocess.run(
        ["import", "-window", "root", "png:-"], env=desktop.env, capture_output=True, check=True, timeout=20
    ).stdout
    pixel = Image.open(io.BytesIO(png)).convert("RGB").getpixel(point)
    assert isinstance(pixel, tuple)
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def close_to(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 6) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


@pytest.fixture()
def web_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def test_data_file_and_http_urls_show_in_the_screenshot(
    desktop: DevDesktop, client: httpx.Client, web_root: tuple[str, Path], tmp_path: Path
) -> None:
    red = "data:image/png;base64," + base64.b64encode(image_bytes((220, 30, 40))).decode()
    answer = client.post("/desktop/wallpaper", json={"url": red})
    assert answer.status_code == 200, answer.text
    assert answer.json()["success"] is True
    assert close_to(root_pixel(desktop), (220, 30, 40))

    jpeg = tmp_path / "green wall.jpg"
    jpeg.write_bytes(image_bytes((30, 200, 60), "JPEG"))
    assert (
        client.post("/desktop/wallpaper", json={"url": f"file://{jpeg}".replace(" ", "%20")}).status_code
        == 200
    )
    assert close_to(root_pixel(desktop), (30, 200, 60))

    base, folder = web_root
    (folder / "blue.gif").write_bytes(image_bytes((20, 40, 230), "GIF"))
    assert client.post("/desktop/wallpaper", json={"url": f"{base}/blue.gif"}).status_code == 200
    assert close_to(root_pixel(desktop), (20, 40, 230), tolerance=12)
    # The agent's own next screenshot shows it as well.
    shot = client.get("/desktop/screenshot").content
    pixel = Image.open(io.BytesIO(shot)).convert("RGB").getpixel(CORNER)
    assert isinstance(pixel, tuple)
    assert close_to((int(pixel[0]), int(pixel[1]), int(pixel[2])), (20, 40, 230), tolerance=12)


def test_repeated_changes_do_not_leak_retained_clients(desktop: DevDesktop, client: httpx.Client) -> None:
    def clients() -> int:
        return len(observe(desktop, "xlsclients", "-a").splitlines())

    for color in ((1, 2, 3), (4, 5, 6)):
        url = "data:image/png;base64," + base64.b64encode(image_bytes(color)).decode()
        assert client.post("/desktop/wallpaper", json={"url": url}).status_code == 200
    before = clients()
    for color in ((7, 8, 9), (10, 11, 12), (13, 14, 15)):
        url = "data:image/png;base64," + base64.b64encode(image_bytes(color)).decode()
        assert client.post("/desktop/wallpaper", json={"url": url}).status_code == 200
    assert clients() <= before
    props = observe(desktop, "xprop", "-root", "_XROOTPMAP_ID", "ESETROOT_PMAP_ID").splitlines()
    assert len({line.split("#")[-1].strip() for line in props}) == 1  # both name the same pixmap


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("data:text/plain,hello", 400),  # not an image
        ("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n broken").decode(), 400),
        ("ftp://example.com/a.png", 400),
        ("file:///nonexistent/wall.png", 404),
        ("http://127.0.0.1:9/unreachable.png", 400),
    ],
)
def test_bad_urls_are_client_errors(client: httpx.Client, url: str, status: int) -> None:
    answer = client.post("/desktop/wallpaper", json={"url": url})
    assert answer.status_code == status, answer.text


async def test_size_cap(desktop: DevDesktop, web_root: tuple[str, Path]) -> None:
    base, folder = web_root
    (folder / "big.png").write_bytes(image_bytes((1, 1, 1), size=(800, 800)) + b"\0" * 4096)
    service = WallpaperService(desktop.display, resolve_user(None), max_bytes=2048, base_env=desktop.env)
    with pytest.raises(PayloadTooLarge):
        await service.set_from_url(f"{base}/big.png")


async def test_xfce_desktop_is_changed_through_xfconf(tmp_path: Path) -> None:
    with DevDesktop(window_manager="xfwm4") as xfce:
        xfdesktop = subprocess.Popen(
            ["xfdesktop"], env=xfce.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and "last-image" not in observe(
                xfce, "xfconf-query", "-c", "xfce4-desktop", "-l"
            ):
                time.sleep(0.1)
            user = resolve_user(None)
            service = WallpaperService(xfce.display, user, base_env=xfce.env)
            url = "data:image/png;base64," + base64.b64encode(image_bytes((200, 120, 10))).decode()
            result = await service.set_from_url(url)
            assert result.method == "xfconf"
            listing = observe(xfce, "xfconf-query", "-c", "xfce4-desktop", "-l", "-v")
            images = [line.split()[-1] for line in listing.splitlines() if "/last-image" in line]
            assert images and all(image == result.path for image in images)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not close_to(root_pixel(xfce, (640, 360)), (200, 120, 10)):
                time.sleep(0.2)
            assert close_to(root_pixel(xfce, (640, 360)), (200, 120, 10))
        finally:
            xfdesktop.terminate()
            xfdesktop.wait(10)
