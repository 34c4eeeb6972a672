"""GET /screencast against x11vnc on the same Xvfb desktop (1280x720).

    python bench/bench_screencast.py [--seconds S] [--clicks N]

Three measures, each for our screencast (a WebSocket viewer, JPEG quality 70, fps cap 30) and
for x11vnc (a minimal RFB 3.8 client in this file: raw encoding, incremental update requests):
* a desktop redrawing continuously (a full-screen xterm listing /usr/bin in a loop): frames per
  second received and the server's CPU (its process's user+system time) per second and per frame;
* an idle desktop: the server's CPU per second while a viewer is connected;
* input-to-frame latency: a click (POST /desktop/click, keep-alive) on a window that changes
  colour when clicked, until the first frame showing the new colour arrives.
Targets (issue 16): >= 30 fps with < 1 core; idle ~0; latency <= 50 ms at 30 fps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.session.devdesktop import DevDesktop  # noqa: E402
from bench.common import machine, write_section  # noqa: E402
from tests.conftest import RunningAgent, start_agent  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
# A window that swaps its colour on every click: what "a click that changes pixels" clicks.
TOGGLE = """
import sys
from Xlib import X, display
d = display.Display()
s = d.screen()
colours = [s.default_colormap.alloc_color(0, 0, 65535).pixel, s.default_colormap.alloc_color(65535, 65535, 0).pixel]
w = s.root.create_window(400, 200, 300, 200, 0, s.root_depth, background_pixel=colours[0],
                         event_mask=X.ButtonPressMask | X.ExposureMask, override_redirect=True)
w.map()
d.sync()
print("ready", flush=True)
state = 0
while True:
    e = d.next_event()
    if e.type == X.ButtonPress:
        state ^= 1
        w.change_attributes(background_pixel=colours[state])
        w.clear_area()
        d.flush()
"""
BLUE, YELLOW = (0, 0, 255), (255, 255, 0)
POINT = (550, 300)  # inside the toggle window


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def close_to(rgb: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(int(a) - b) <= 40 for a, b in zip(rgb, expected, strict=False))


class Viewer:
    """A frame source for the measures: ``next_frame()`` returns (arrival time, pixel at POINT)."""

    next_frame: Callable[[float], Awaitable[tuple[float, tuple[int, ...]] | None]]
    last: tuple[int, ...] | None = None  # the pixel at POINT in the newest frame


class ScreencastViewer(Viewer):
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_frame = self._next

    async def _next(self, timeout: float) -> tuple[float, tuple[int, ...]] | None:
        while True:
            try:
                message = await self.ws.receive(timeout=timeout)
            except TimeoutError:
                return None
            if message.type == aiohttp.WSMsgType.BINARY:
                arrived = time.perf_counter()
                image = Image.open(io.BytesIO(message.data))
                image.draft("RGB", (image.width // 8, image.height // 8))  # decode just enough for a pixel
                scale = image.width / 1280
                pixel = image.convert("RGB").getpixel((int(POINT[0] * scale), int(POINT[1] * scale)))
                self.last = tuple(pixel)  # type: ignore[arg-type]
                return arrived, self.last
            if message.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"screencast closed: {message!r}")


class RfbViewer(Viewer):
    """A minimal RFB 3.8 client: no auth, 32-bit raw pixels, incremental updates, a local copy of
    the framebuffer (so the pixel at POINT is known after every update)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_frame = self._next
        self._handshake()

    def _read(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("x11vnc closed the connection")
            data += chunk
        return bytes(data)

    def _handshake(self) -> None:
        self._read(12)
        self.sock.sendall(b"RFB 003.008\n")
        count = self._read(1)[0]
        types = self._read(count)
        assert 1 in types, f"x11vnc wants authentication: {types!r}"
        self.sock.sendall(b"\x01")
        assert struct.unpack(">I", self._read(4))[0] == 0, "security handshake failed"
        self.sock.sendall(b"\x01")  # shared
        self.width, self.height = struct.unpack(">HH", self._read(4))
        self._read(16)
        self._read(struct.unpack(">I", self._read(4))[0])
        # 32 bpp, depth 24, little endian, true colour, max 255, shifts r=16 g=8 b=0 (BGRX bytes)
        pixel_format = struct.pack(">BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
        self.sock.sendall(b"\x00xxx".replace(b"x", b"\x00") + pixel_format)
        self.sock.sendall(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: raw
        self.framebuffer = np.zeros((self.height, self.width, 4), dtype=np.uint8)
        self._request(incremental=False)

    def _request(self, *, incremental: bool) -> None:
        self.sock.sendall(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, self.width, self.height))

    def _update(self) -> None:
        kind = self._read(1)[0]
        if kind != 0:  # bell, cut text, colour map: skipped
            if kind == 3:
                self._read(3)
                self._read(struct.unpack(">I", self._read(4))[0])
            return
        self._read(1)
        (rects,) = struct.unpack(">H", self._read(2))
        for _ in range(rects):
            x, y, w, h, encoding = struct.unpack(">HHHHi", self._read(12))
            if encoding == 0:
                self.framebuffer[y : y + h, x : x + w] = np.frombuffer(
                    self._read(w * h * 4), np.uint8
                ).reshape(h, w, 4)
        self._request(incremental=True)

    async def _next(self, timeout: float) -> tuple[float, tuple[int, ...]] | None:
        self.sock.settimeout(timeout)
        try:
            await asyncio.to_thread(self._update)
        except TimeoutError:
            return None
        b, g, r, _ = self.framebuffer[POINT[1], POINT[0]]
        self.last = (int(r), int(g), int(b))
        return time.perf_counter(), self.last

    def close(self) -> None:
        self.sock.close()


async def frames_for(viewer: Viewer, seconds: float, pid: int) -> tuple[int, float]:
    """Frames received in ``seconds`` and the server's CPU seconds meanwhile."""
    cpu = cpu_seconds(pid)
    deadline = time.perf_counter() + seconds
    count = 0
    while (left := deadline - time.perf_counter()) > 0:
        if await viewer.next_frame(left) is not None:
            count += 1
    return count, cpu_seconds(pid) - cpu


async def drain(viewer: Viewer, quiet: float = 0.5) -> tuple[int, ...] | None:
    """Read frames until none came for ``quiet`` s; the last pixel seen."""
    last = None
    while (frame := await viewer.next_frame(quiet)) is not None:
        last = frame[1]
    return last


async def latencies(viewer: Viewer, http: aiohttp.ClientSession, url: str, clicks: int) -> list[float]:
    samples = []
    await drain(viewer)
    pixel = viewer.last
    for _ in range(clicks):
        expected = YELLOW if pixel is not None and close_to(pixel, BLUE) else BLUE
        started = time.perf_counter()
        async with http.post(f"{url}/desktop/click", json={"x": POINT[0], "y": POINT[1]}) as answer:
            assert answer.status == 200
        while True:
            frame = await viewer.next_frame(2.0)
            if frame is None:
                raise RuntimeError("no frame showed the click")
            if close_to(frame[1], expected):
                samples.append(frame[0] - started)
                pixel = frame[1]
                break
        await drain(viewer, 0.2)
    return samples


async def measure(
    agent: RunningAgent,
    *,
    desktop: DevDesktop,
    vnc: subprocess.Popen[bytes],
    port: int,
    seconds: float,
    clicks: int,
) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    headers = {"Authorization": f"Bearer {agent.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        base = agent.url.replace("http://", "ws://") + "/screencast?quality=70&fps="
        sockets: list[aiohttp.ClientWebSocketResponse] = []

        async def screencast(fps: int) -> Viewer:
            sockets.append(await http.ws_connect(base + str(fps)))
            return ScreencastViewer(sockets[-1])

        async def vnc_viewer() -> Viewer:
            return RfbViewer(port)

        viewers: list[tuple[str, Callable[[], Awaitable[Viewer]], int]] = [
            ("screencast", lambda: screencast(30), agent.process.pid),
            ("screencast60", lambda: screencast(60), agent.process.pid),
            ("x11vnc", vnc_viewer, vnc.pid),
        ]
        rfb: RfbViewer | None = None
        for name, connect, pid in viewers:  # one viewer at a time: the other would cost its server CPU
            for previous in sockets:
                await previous.close()
            viewer = await connect()
            if isinstance(viewer, RfbViewer):
                rfb = viewer
            await drain(viewer)
            idle_frames, idle_cpu = await frames_for(viewer, seconds, pid)
            busy = subprocess.Popen(
                ["xterm", "-geometry", "213x55+0+0", "-e", "sh", "-c", "while :; do ls -la /usr/bin; done"],
                env=desktop.env,
            )
            await frames_for(viewer, 1.0, pid)  # read (not counted) while the terminal starts
            busy_frames, busy_cpu = await frames_for(viewer, seconds, pid)
            busy.kill()
            busy.wait()
            await drain(viewer)
            samples = await latencies(viewer, http, agent.url, clicks)
            results[name] = {
                "fps": busy_frames / seconds,
                "cores": busy_cpu / seconds,
                "ms_per_frame": 1000 * busy_cpu / max(busy_frames, 1),
                "idle_cores": idle_cpu / seconds,
                "idle_frames": idle_frames,
                "latency_ms": 1000 * statistics.median(samples),
                "latency_p90_ms": 1000 * sorted(samples)[int(len(samples) * 0.9) - 1],
            }
        if rfb is not None:
            rfb.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clicks", type=int, default=30)
    args = parser.parse_args()
    with DevDesktop(window_manager=None) as desktop, tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["xsetroot", "-solid", "#204060"], env=desktop.env, check=True)
        toggle = subprocess.Popen(
            [sys.executable, "-c", TOGGLE], env=desktop.env, stdout=subprocess.PIPE, text=True
        )
        assert toggle.stdout is not None and toggle.stdout.readline().strip() == "ready"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        vnc = subprocess.Popen(
            [
                "x11vnc",
                "-display",
                desktop.display,
                "-rfbport",
                str(port),
                "-localhost",
                "-nopw",
                "-shared",
                "-forever",
                "-quiet",
                "-nocursor",
            ],
            env=desktop.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)
        agent = start_agent(env, Path(tmp), "--display", desktop.display)
        try:
            deadline = time.monotonic() + 15
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    break
                assert time.monotonic() < deadline, "x11vnc did not listen"
                time.sleep(0.2)
            found = asyncio.run(
                measure(agent, desktop=desktop, vnc=vnc, port=port, seconds=args.seconds, clicks=args.clicks)
            )
        finally:
            agent.stop()
            for process in (vnc, toggle):
                process.terminate()
                process.wait(10)
    ours, ours60, vnc_found = found["screencast"], found["screencast60"], found["x11vnc"]

    def row(label: str, key: str, fmt: str, target: str) -> str:
        return f"| {label} | {ours[key]:{fmt}} | {ours60[key]:{fmt}} | {vnc_found[key]:{fmt}} | {target} |"

    markdown = "\n".join(
        [
            "## Screencast (bench/bench_screencast.py)",
            "",
            f"Machine: {machine()}. Xvfb 1280x720, no window manager; one viewer at a time on the same",
            "desktop: GET /screencast over WebSocket (quality=70, fps caps 30 and 60) and x11vnc (raw",
            "encoding, incremental updates, read by the bench's own minimal RFB client in Python: x11vnc's",
            "frame rate here includes that client's cost of reading 3.6 MB raw updates). Busy: a full-screen xterm listing",
            f"/usr/bin in a loop for {args.seconds:g} s. CPU: the server process's user+system time.",
            f"Latency: POST /desktop/click on a window that changes colour, to the first frame showing it (median of {args.clicks}).",
            "",
            "| what | screencast (fps=30) | screencast (fps=60) | x11vnc | target |",
            "|---|---|---|---|---|",
            row("frames/s, desktop redrawing", "fps", ".1f", ">= 30"),
            row("server CPU (cores), redrawing", "cores", ".2f", "< 1"),
            row("server CPU per frame (ms)", "ms_per_frame", ".1f", ""),
            row("server CPU (cores), idle desktop", "idle_cores", ".3f", "~0"),
            row("frames sent, idle desktop", "idle_frames", ".0f", "0"),
            row("input-to-frame latency (ms, median)", "latency_ms", ".1f", "<= 50"),
            row("input-to-frame latency (ms, p90)", "latency_p90_ms", ".1f", ""),
        ]
    )
    print(markdown)
    write_section("bench_screencast", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
