"""Wallpaper from data, file and http URLs, seen in the root window's pixels (ImageMagick import)."""

from __future__ import annotations

import base64
import concurrent.futures
import http.server
import io
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import psutil
import pytest
from PIL import Image

from agent.errors import PayloadTooLarge
from agent.session.devdesktop import DevDesktop
from agent.session.user import resolve_user
from agent.x11.wallpaper import WallpaperService
from tests.conftest import start_agent
from tests.displays import unused_display
from tests.waiting import wait_until
from tests.x11.windowing import observe

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
def web_root(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A web server on every address (port, folder); ``/redirect?to=URL`` answers 302 to URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/redirect?to="):
                self.send_response(302)
                self.send_header("Location", urllib.parse.unquote(self.path.split("=", 1)[1]))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

    folder = tmp_path / "web"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], folder
    server.shutdown()
    server.server_close()


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback or link-local (a wallpaper may come
    from it), or None."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET:
                ip = ipaddress.ip_address(address.address)
                if not (ip.is_loopback or ip.is_link_local):
                    return address.address
    return None


def agent_env(desktop: DevDesktop) -> dict[str, str]:
    return dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)


def root_pixmap(desktop: DevDesktop) -> str:
    return observe(desktop, "xprop", "-root", "_XROOTPMAP_ID").strip()


def data_url(color: tuple[int, int, int]) -> str:
    return "data:image/png;base64," + base64.b64encode(image_bytes(color)).decode()


def test_data_and_file_urls_show_in_the_screenshot(
    desktop: DevDesktop, client: httpx.Client, tmp_path: Path
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
    # The agent's own next screenshot shows it as well.
    shot = client.get("/desktop/screenshot").content
    pixel = Image.open(io.BytesIO(shot)).convert("RGB").getpixel(CORNER)
    assert isinstance(pixel, tuple)
    assert close_to((int(pixel[0]), int(pixel[1]), int(pixel[2])), (30, 200, 60))


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
        ("file:///nonexistent/wall.png", 404),  # as GET /files answers on this agent (no roots)
        ("http://example.com/wall.png", 403),  # --wallpaper-fetch-urls is off by default
    ],
)
def test_bad_urls_are_client_errors(client: httpx.Client, url: str, status: int) -> None:
    answer = client.post("/desktop/wallpaper", json={"url": url})
    assert answer.status_code == status, answer.text


async def test_size_cap(desktop: DevDesktop) -> None:
    big = image_bytes((1, 1, 1), size=(800, 800)) + b"\0" * 4096
    service = WallpaperService(desktop.display, resolve_user(None), max_bytes=2048, base_env=desktop.env)
    with pytest.raises(PayloadTooLarge):
        await service.set_from_url("data:image/png;base64," + base64.b64encode(big).decode())


async def test_xfce_desktop_is_changed_through_xfconf(tmp_path: Path) -> None:
    with DevDesktop(window_manager="xfwm4") as xfce:
        xfdesktop = subprocess.Popen(
            ["xfdesktop"], env=xfce.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_until(
                lambda: "last-image" in observe(xfce, "xfconf-query", "-c", "xfce4-desktop", "-l"),
                timeout=15,
                what="xfdesktop to publish its settings",
                interval=0.1,
            )
            user = resolve_user(None)
            service = WallpaperService(xfce.display, user, base_env=xfce.env)
            url = "data:image/png;base64," + base64.b64encode(image_bytes((200, 120, 10))).decode()
            result = await service.set_from_url(url)
            assert result.method == "xfconf"
            listing = observe(xfce, "xfconf-query", "-c", "xfce4-desktop", "-l", "-v")
            images = [line.split()[-1] for line in listing.splitlines() if "/last-image" in line]
            assert images and all(image == result.path for image in images)
            wait_until(
                lambda: close_to(root_pixel(xfce, (640, 360)), (200, 120, 10)),
                timeout=10,
                what="xfdesktop to paint the wallpaper",
                interval=0.2,
            )
        finally:
            xfdesktop.terminate()
            xfdesktop.wait(10)


GREEN, BLUE, RED = (30, 200, 60), (20, 40, 230), (220, 30, 40)


@pytest.fixture()
def fenced_folder() -> Iterator[Path]:
    """A folder the desktop user (nobody) can read, outside pytest's root-only tmp."""
    base = Path(tempfile.mkdtemp(prefix="computer-agent-wallpaper-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="reading as the desktop user needs a root agent")
def test_file_urls_are_read_under_the_files_rules(desktop: DevDesktop, fenced_folder: Path) -> None:
    """Issue 11, finding 2: as the desktop user, within the roots; no oracle beyond /files; a
    FIFO is a quick 400 and blocks nothing; http(s) is off by default."""
    root = fenced_folder / "root"
    root.mkdir(mode=0o755)
    (root / "mine.png").write_bytes(image_bytes(BLUE))
    (root / "mine.png").chmod(0o644)
    secret = root / "secret.png"
    secret.write_bytes(image_bytes(RED))
    secret.chmod(0o600)  # root's own: the desktop user cannot read it
    fifo = root / "fifo.png"
    os.mkfifo(fifo, 0o666)
    fifo.chmod(0o666)
    agent = start_agent(
        agent_env(desktop),
        fenced_folder,
        "--display",
        desktop.display,
        "--desktop-user",
        "nobody",
        "--files-allowed-roots",
        str(root),
    )
    try:
        with agent.client() as http_client:
            assert http_client.post("/desktop/wallpaper", json={"url": data_url(GREEN)}).status_code == 200
            assert close_to(root_pixel(desktop), GREEN)
            pixmap = root_pixmap(desktop)

            refused = http_client.post("/desktop/wallpaper", json={"url": f"file://{secret}"})
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "FILE_PERMISSION_DENIED"
            assert close_to(root_pixel(desktop), GREEN) and root_pixmap(desktop) == pixmap

            # Each answer is what GET /files tells the same caller: nothing more.
            answers = {}
            for path in (str(secret), "/etc/shadow", "/nonexistent/wall.png", str(root / "missing.png")):
                wallpaper = http_client.post("/desktop/wallpaper", json={"url": f"file://{path}"})
                files = http_client.get("/files", params={"path": path})
                assert wallpaper.status_code == files.status_code, (path, wallpaper.text, files.text)
                answers[path] = (wallpaper.status_code, wallpaper.json()["error"]["code"])
            assert answers["/etc/shadow"] == answers["/nonexistent/wall.png"] == (403, "PATH_NOT_ALLOWED")
            assert answers[str(root / "missing.png")][0] == 404
            assert close_to(root_pixel(desktop), GREEN) and root_pixmap(desktop) == pixmap

            # Eight FIFOs at once (the old agent hung a shared executor thread on each, forever).
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                fifo_answers = list(
                    pool.map(
                        lambda _: http_client.post("/desktop/wallpaper", json={"url": f"file://{fifo}"}),
                        range(8),
                    )
                )
            assert [answer.status_code for answer in fifo_answers] == [400] * 8, fifo_answers[0].text
            assert "not a regular file" in fifo_answers[0].json()["error"]["message"]
            assert http_client.post("/desktop/launch", json={"app": "true"}).status_code == 200
            assert http_client.get("/desktop/environment").status_code == 200

            http_url = http_client.post("/desktop/wallpaper", json={"url": "http://192.0.2.1/wall.png"})
            assert (
                http_url.status_code == 403
                and "--wallpaper-fetch-urls" in http_url.json()["error"]["message"]
            )

            # The desktop user's own image in the root is fine.
            assert (
                http_client.post("/desktop/wallpaper", json={"url": f"file://{root}/mine.png"}).status_code
                == 200
            )
            assert close_to(root_pixel(desktop), BLUE)
    finally:
        agent.stop()


def test_exec_false_refuses_file_urls_like_the_files_api(desktop: DevDesktop, fenced_folder: Path) -> None:
    image = fenced_folder / "readable.png"
    image.write_bytes(image_bytes(RED))
    image.chmod(0o644)
    agent = start_agent(agent_env(desktop), fenced_folder, "--display", desktop.display, "--exec", "false")
    try:
        with agent.client() as http_client:
            assert http_client.post("/desktop/wallpaper", json={"url": data_url(GREEN)}).status_code == 200
            answer = http_client.post("/desktop/wallpaper", json={"url": f"file://{image}"})
            assert answer.status_code == 403 and answer.json()["error"]["code"] == "FILES_DISABLED"
            assert "--exec false" in answer.json()["error"]["message"]
            assert http_client.get("/files", params={"path": str(image)}).status_code == 403
        assert close_to(root_pixel(desktop), GREEN)
    finally:
        agent.stop()


def test_http_urls_when_enabled_never_reach_the_vm_itself(
    desktop: DevDesktop, web_root: tuple[int, Path], tmp_path: Path
) -> None:
    port, folder = web_root
    (folder / "blue.gif").write_bytes(image_bytes(BLUE, "GIF"))
    (folder / "red.png").write_bytes(image_bytes(RED))
    agent = start_agent(
        agent_env(desktop), tmp_path, "--display", desktop.display, "--wallpaper-fetch-urls", "true"
    )
    try:
        with agent.client() as http_client:
            assert http_client.post("/desktop/wallpaper", json={"url": data_url(GREEN)}).status_code == 200
            for url in (
                f"http://127.0.0.1:{port}/red.png",
                f"http://localhost:{port}/red.png",  # a name: refused after resolution
                f"http://[::1]:{port}/red.png",
                f"http://[::ffff:127.0.0.1]:{port}/red.png",
                f"http://0.0.0.0:{port}/red.png",
                "http://169.254.169.254/latest/meta-data",  # link-local: the cloud metadata service
            ):
                answer = http_client.post("/desktop/wallpaper", json={"url": url})
                assert answer.status_code == 400, (url, answer.text)
                assert "loopback, link-local" in answer.json()["error"]["message"], url
            assert close_to(root_pixel(desktop), GREEN)
            address = non_loopback_address()
            if address is None:
                pytest.skip("no non-loopback address to serve an allowed image from")
            allowed = http_client.post(
                "/desktop/wallpaper", json={"url": f"http://{address}:{port}/blue.gif"}
            )
            assert allowed.status_code == 200, allowed.text
            assert close_to(root_pixel(desktop), BLUE, tolerance=12)
            to_loopback = urllib.parse.quote(f"http://127.0.0.1:{port}/red.png", safe="")
            redirected = http_client.post(
                "/desktop/wallpaper", json={"url": f"http://{address}:{port}/redirect?to={to_loopback}"}
            )
            assert redirected.status_code == 400, redirected.text
            assert close_to(root_pixel(desktop), BLUE, tolerance=12)
    finally:
        agent.stop()


def test_an_xfdesktop_on_another_display_does_not_take_the_wallpaper(
    desktop: DevDesktop, client: httpx.Client, tmp_path: Path
) -> None:
    """The user's xfdesktop of another session (or a container's) draws another screen: this
    display's wallpaper is still painted here (a full test run turned black while one ran)."""
    impostor = tmp_path / "xfdesktop"
    shutil.copy("/bin/sleep", impostor)
    other = subprocess.Popen([str(impostor), "60"], env=dict(os.environ, DISPLAY=unused_display()))
    try:
        blue = "data:image/png;base64," + base64.b64encode(image_bytes((40, 60, 210))).decode()
        answer = client.post("/desktop/wallpaper", json={"url": blue})
        assert answer.status_code == 200, answer.text
        assert answer.json()["method"] == "root-pixmap"
        assert close_to(root_pixel(desktop), (40, 60, 210))
    finally:
        other.kill()
        other.wait()
