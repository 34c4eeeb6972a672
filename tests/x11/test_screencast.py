"""GET /screencast on a real Xvfb: change-driven MJPEG and WebSocket frames, checked against
screenshots and the X server's own changes (xsetroot, xterm output), shared encoders (/metrics),
and a reader that reads nothing."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import pytest
from PIL import Image

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent
from tests.mjpeg import MjpegReader, ReceivedFrame
from tests.waiting import wait_until

IDLE_SECONDS = 2.0
# JPEG at quality 90 against the lossless screenshot: a few levels on flat colour and text edges.
MEAN_ERROR_LIMIT = 6.0


def set_root(desktop: DevDesktop, colour: str) -> None:
    subprocess.run(["xsetroot", "-solid", colour], env=desktop.env, check=True)


def metric(client: httpx.Client, name: str) -> float:
    return metrics(client, name)[0]


def metrics(client: httpx.Client, *names: str) -> list[float]:
    """The values of ``names`` from one scrape of /metrics."""
    text = client.get("/metrics").text
    values = []
    for name in names:
        found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
        assert found is not None, f"{name} is not in /metrics"
        values.append(float(found.group(1)))
    return values


ENCODED = (
    "computer_agent_screencast_frames_encoded_total",
    "computer_agent_screencast_frames_unchanged_total",
)


def screenshot_pixels(client: httpx.Client) -> np.ndarray:
    answer = client.get("/desktop/screenshot", params={"format": "png"})
    answer.raise_for_status()
    return np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"), dtype=np.int16)


def pixel(frame: np.ndarray, x: int, y: int) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in frame[y, x])
    return r, g, b


def close_to(colour: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected, strict=True))


@pytest.fixture()
def quiet_root(desktop: DevDesktop) -> Iterator[None]:
    """A plain root window and nothing else drawing: the screen is still."""
    set_root(desktop, "#204060")
    yield
    set_root(desktop, "#204060")


def reader(agent: RunningAgent, query: str = "") -> MjpegReader:
    return MjpegReader(agent.url, agent.token, query)


def test_idle_desktop_sends_the_current_frame_then_nothing(
    agent: RunningAgent, client: httpx.Client, quiet_root: None
) -> None:
    wait_until(lambda: close_to(pixel(screenshot_pixels(client), 5, 5), (0x20, 0x40, 0x60)), what="the root")
    with reader(agent, "quality=90") as stream:
        assert stream.status_line.split()[1] == "200", stream.status_line
        assert stream.headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
        first = stream.wait_for(1)[0]
        assert first.seq >= 1
        assert first.headers["content-type"] == "image/jpeg"
        assert (first.headers["x-screen-width"], first.headers["x-screen-height"]) == ("1280", "720")
        time.sleep(IDLE_SECONDS)
        assert len(stream.frames) == 1, f"an idle screen sent {len(stream.frames) - 1} more frames"
        frame = first.pixels()
        assert frame.shape == (720, 1280, 3)
        assert float(np.abs(frame - screenshot_pixels(client)).mean()) < MEAN_ERROR_LIMIT


def test_changing_desktop_sends_frames_that_match_a_screenshot(
    agent: RunningAgent, client: httpx.Client, desktop: DevDesktop, quiet_root: None
) -> None:
    with reader(agent, "quality=90&fps=30") as stream:
        stream.wait_for(1)
        for colour, rgb in (("#c03020", (0xC0, 0x30, 0x20)), ("#20a040", (0x20, 0xA0, 0x40))):
            seen = len(stream.frames)
            set_root(desktop, colour)
            wait_until(
                functools.partial(_shows, stream, seen, rgb), what=f"a frame showing the root in {colour}"
            )
        # A terminal writing text: the frames follow it, and once it stops the last frame is the screen.
        term = subprocess.Popen(
            [
                "xterm",
                "-geometry",
                "60x12+200+150",
                "-e",
                "sh",
                "-c",
                "for i in $(seq 1 40); do echo line $i; sleep 0.05; done; sleep 30",
            ],
            env=desktop.env,
        )
        try:
            seen = len(stream.frames)
            wait_until(
                lambda: len(stream.frames) > seen + 3, timeout=15, what="frames of the terminal's output"
            )
            settled = wait_until(
                lambda: _settled(stream, 0.5), timeout=15, what="the terminal to stop drawing"
            )
            last = settled.pixels()
            error = float(np.abs(last - screenshot_pixels(client)).mean())
            assert error < MEAN_ERROR_LIMIT, f"the last frame differs from a screenshot by {error:.1f}"
        finally:
            term.kill()
            term.wait()


def _shows(stream: MjpegReader, since: int, rgb: tuple[int, int, int]) -> bool:
    """Whether a frame from the ``since``-th on shows ``rgb`` in the middle of the screen."""
    return any(close_to(pixel(f.pixels(), 640, 360), rgb) for f in stream.frames[since:])


def _settled(stream: MjpegReader, quiet: float) -> ReceivedFrame | None:
    """The last frame once none came for ``quiet`` seconds (else False)."""
    if not stream.frames or time.monotonic() - stream.frames[-1].arrived < quiet:
        return None
    return stream.frames[-1]


def test_viewers_of_the_same_options_share_one_encoder(
    agent: RunningAgent, client: httpx.Client, desktop: DevDesktop, quiet_root: None
) -> None:
    wait_until(
        lambda: metric(client, "computer_agent_screencast_encoders") == 0, what="no screencast running"
    )
    encoded, unchanged = metrics(client, *ENCODED)
    with reader(agent, "quality=60") as one, reader(agent, "quality=60") as two:
        one.wait_for(1)
        two.wait_for(1)
        assert metric(client, "computer_agent_screencast_encoders") == 1
        assert metric(client, "computer_agent_screencast_viewers") == 2
        for colour in ("#101010", "#f0f0f0", "#808000"):
            set_root(desktop, colour)
            wait_until(
                lambda: one.frames[-1].seq == two.frames[-1].seq and _settled(one, 0.3),
                what="both viewers to get the same last frame",
            )
        encoded_now, unchanged_now = metrics(client, *ENCODED)
        captures = (encoded_now - encoded) - (unchanged_now - unchanged)
        # Every frame either viewer got was encoded once, for both (numbered by the one encoder):
        # two encoders would have captured twice as often. One capture may be in flight, or its
        # frame not yet read, when the counters are read.
        seqs = {f.seq for f in one.frames} | {f.seq for f in two.frames}
        span = max(seqs) - min(seqs) + 1
        assert span - 1 <= captures <= span + 1, (
            captures,
            sorted(seqs),
            encoded,
            unchanged,
            encoded_now,
            unchanged_now,
        )
        by_seq = {f.seq: f.data for f in one.frames}
        common = [f for f in two.frames if f.seq in by_seq]
        assert len(common) >= 2 and all(by_seq[f.seq] == f.data for f in common)  # the same bytes
        with reader(agent, "quality=61") as other:
            other.wait_for(1)
            assert metric(client, "computer_agent_screencast_encoders") == 2
    wait_until(
        lambda: metric(client, "computer_agent_screencast_encoders") == 0,
        what="the broadcasters to stop with their last viewer",
    )
    assert metric(client, "computer_agent_screencast_viewers") == 0


def test_websocket_frames(
    agent: RunningAgent, client: httpx.Client, desktop: DevDesktop, quiet_root: None
) -> None:
    async def watch() -> tuple[dict[str, object], list[bytes]]:
        headers = {"Authorization": f"Bearer {agent.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{agent.url}/screencast?max_width=640&quality=80", headers=headers) as ws,
        ):
            info = await ws.receive_json(timeout=10)
            first = await ws.receive_bytes(timeout=10)
            idle = None
            with contextlib.suppress(TimeoutError):
                idle = await ws.receive(timeout=IDLE_SECONDS)
            assert idle is None, f"an idle screen sent {idle!r}"
            await asyncio.to_thread(set_root, desktop, "#e0e0e0")
            changed = await ws.receive_bytes(timeout=10)
            return info, [first, changed]

    info, frames = asyncio.run(watch())
    assert info == {"type": "screen", "width": 640, "height": 360, "screen_width": 1280, "screen_height": 720}
    images = [Image.open(io.BytesIO(data)) for data in frames]
    assert [(image.format, image.size) for image in images] == [("JPEG", (640, 360))] * 2
    assert close_to(images[1].convert("RGB").getpixel((320, 180)), (0xE0, 0xE0, 0xE0))  # type: ignore[arg-type]


def test_bad_options_are_a_400(agent: RunningAgent, client: httpx.Client) -> None:
    answer = client.get("/screencast", params={"fps": "0"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert client.get("/screencast", params={"quality": "101"}).status_code == 400
    assert httpx.get(f"{agent.url}/screencast").status_code == 401


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1))


def test_a_reader_that_reads_nothing_skips_frames_and_holds_nothing_up(
    agent: RunningAgent, client: httpx.Client, desktop: DevDesktop, quiet_root: None
) -> None:
    """A viewer that never reads: frames keep being made for another viewer, input keeps working,
    the agent's memory does not grow with the frames it cannot send."""
    stuck = socket.create_connection(("127.0.0.1", int(agent.url.rsplit(":", 1)[1])))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(
        f"GET /screencast?quality=95 HTTP/1.0\r\nAuthorization: Bearer {agent.token}\r\n\r\n".encode()
    )
    painter = subprocess.Popen(  # the whole screen in new colours, as fast as xsetroot goes
        [
            "sh",
            "-c",
            "while :; do xsetroot -solid '#ff0000'; xsetroot -mod 4 4; xsetroot -solid '#0000ff'; done",
        ],
        env=desktop.env,
    )
    try:
        with reader(agent, "quality=95") as live:
            live.wait_for(1)
            wait_until(
                lambda: metric(client, "computer_agent_screencast_frames_dropped_total") > 20,
                timeout=20,
                what="frames skipped for the reader that reads nothing",
            )
            rss = _rss_kib(agent.process.pid)
            before = len(live.frames)
            for i in range(20):  # input still works, and is seen by the live viewer's frames
                client.post("/desktop/click", json={"x": 600 + i, "y": 400}).raise_for_status()
            wait_until(lambda: len(live.frames) > before + 5, what="frames for the live viewer")
            time.sleep(2)
            grown = _rss_kib(agent.process.pid) - rss
            assert grown < 20 * 1024, f"the agent grew by {grown} KiB while a reader read nothing"
    finally:
        painter.kill()
        painter.wait()
        stuck.close()
