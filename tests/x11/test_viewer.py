"""GET /viewer in Debian's headless chromium: it shows the desktop (canvas pixels against a
screenshot), and with a control link a click and typed text in the page reach an xterm."""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import time
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import pytest
from PIL import Image

from agent.session.devdesktop import DevDesktop
from tests.cdp import CHROMIUM, Chromium
from tests.conftest import RunningAgent, run_observer
from tests.waiting import wait_until

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
MEAN_ERROR_LIMIT = 8.0  # JPEG at quality 90 drawn on a canvas, against the lossless screenshot


def screenshot(client: httpx.Client) -> np.ndarray:
    answer = client.get("/desktop/screenshot", params={"format": "png"})
    answer.raise_for_status()
    return np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"), dtype=np.int16)


def viewer_link(client: httpx.Client, **options: object) -> str:
    answer = client.post("/viewer/ticket", json={"quality": 90, **options})
    answer.raise_for_status()
    return str(answer.json()["url"])


class Terminal:
    """An xterm running ``cat > path``, and where it is on the screen."""

    def __init__(self, desktop: DevDesktop, path: Path, geometry: str) -> None:
        title = f"viewer-{path.name}"
        self.path = path
        self.process = subprocess.Popen(
            ["xterm", "-title", title, "-geometry", geometry, "-e", "sh", "-c", f"cat > {path}"],
            env=desktop.env,
        )
        self.window = int(run_observer(desktop, "xdotool", "search", "--sync", "--name", title).split()[0])
        self.desktop = desktop
        self.x, self.y = wait_until(
            self._placed, what=f"{title} to be mapped where the window manager put it"
        )

    def _placed(self) -> tuple[int, int] | None:
        """The window's centre once it is viewable and two readings agree (the WM has moved it)."""
        readings = []
        for _ in range(2):
            info = run_observer(self.desktop, "xwininfo", "-id", str(self.window))
            fields = {
                k.strip(): v.strip()
                for k, v in (line.split(":", 1) for line in info.splitlines() if ":" in line)
            }
            if fields.get("Map State") != "IsViewable":
                return None
            readings.append(
                (
                    int(fields["Absolute upper-left X"]) + int(fields["Width"]) // 2,
                    int(fields["Absolute upper-left Y"]) + int(fields["Height"]) // 2,
                )
            )
            time.sleep(0.1)
        return readings[0] if readings[0] == readings[1] else None

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def focused(desktop: DevDesktop) -> int:
    return int(run_observer(desktop, "xdotool", "getwindowfocus").strip())


def test_viewer_shows_the_desktop_and_forwards_a_click_and_typing(
    agent: RunningAgent, client: httpx.Client, desktop: DevDesktop, tmp_path: Path
) -> None:
    subprocess.run(["xsetroot", "-solid", "#306090"], env=desktop.env, check=True)
    target = Terminal(desktop, tmp_path / "target.txt", "50x8+80+80")
    other = Terminal(desktop, tmp_path / "other.txt", "50x8+700+400")  # started last: it has the focus
    try:
        wait_until(lambda: focused(desktop) == other.window, what="the other terminal to have the focus")
        link = viewer_link(client, control=True)
        asyncio.run(_drive(agent, client=client, desktop=desktop, link=link, target=target, tmp=tmp_path))
        assert target.path.read_text() == "hello viewer\n"
        assert other.path.read_text() == ""
    finally:
        target.close()
        other.close()


async def _drive(
    agent: RunningAgent, *, client: httpx.Client, desktop: DevDesktop, link: str, target: Terminal, tmp: Path
) -> None:
    async with Chromium(tmp / "profile") as browser:
        await browser.send("Page.navigate", url=agent.url + link)
        await browser.wait_for("Number(document.body && document.body.dataset.frames || 0) >= 1")
        await browser.wait_for("document.body.dataset.control === 'ready'")
        assert await browser.evaluate("location.search") == ""  # the spent link left the address bar
        # The page shows the desktop: the canvas against a screenshot of the same (still) screen.
        data_url = await browser.evaluate("document.getElementById('screen').toDataURL('image/png')")
        canvas = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB")
        pixels = np.asarray(canvas, dtype=np.int16)
        assert pixels.shape == (720, 1280, 3)
        error = float(np.abs(pixels - await asyncio.to_thread(screenshot, client)).mean())
        assert error < MEAN_ERROR_LIMIT, f"the canvas differs from a screenshot by {error:.1f}"
        # A click on the target terminal in the page focuses it on the desktop.
        box = await browser.evaluate(
            "(() => { const b = document.getElementById('screen').getBoundingClientRect();"
            " return [b.left, b.top, b.width, b.height]; })()"
        )
        left, top, width, height = box
        await browser.click(left + target.x * width / 1280, top + target.y * height / 720)
        try:
            await asyncio.to_thread(
                wait_until, lambda: focused(desktop) == target.window, what="the click to focus the target"
            )
        except AssertionError as exc:
            status = await browser.evaluate("document.getElementById('status').textContent")
            pointer = run_observer(desktop, "xdotool", "getmouselocation")
            raise AssertionError(
                f"{exc}; page status: {status!r}; canvas at {box}; pointer: {pointer}; "
                f"target at {target.x},{target.y}; focus {focused(desktop)}, target {target.window}"
            ) from None
        await browser.type("hello viewer\n")
        await asyncio.to_thread(  # with the page still open: its last messages may be in flight
            wait_until,
            lambda: target.path.read_text() == "hello viewer\n",
            what="the typed line in the target's file",
        )


def test_view_only_link_sends_no_input_and_links_work_once(
    agent: RunningAgent, client: httpx.Client, desktop: DevDesktop, tmp_path: Path
) -> None:
    link = viewer_link(client)
    answer = httpx.get(agent.url + link)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert '"control": false' in answer.text and '"ws_ticket": null' in answer.text
    again = httpx.get(agent.url + link)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "UNAUTHENTICATED"
    assert httpx.get(f"{agent.url}/viewer?ticket=made-up").status_code == 401
    # Minting a link needs the token.
    assert httpx.post(f"{agent.url}/viewer/ticket", json={}).status_code == 401


def test_screencast_websocket_refuses_a_foreign_origin(agent: RunningAgent, client: httpx.Client) -> None:
    """A page on another origin (even on localhost) cannot open the screencast, even with a ticket."""

    async def attempt() -> int:
        ticket = client.post("/ws/ticket", json={}).json()["ticket"]
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(
                    f"{agent.url}/screencast?ticket={ticket}", headers={"Origin": "http://localhost:9"}
                ):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return int(exc.status)

    assert asyncio.run(attempt()) == 403
