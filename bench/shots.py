"""Screenshot measures for bench_core: fresh grabs (the screen changed before each request),
the same screenshot of an unchanged screen (the cache), and cua's computer-server's screenshot.

    python -m bench.shots [--runs N]

alone measures only the fresh screenshots (720p and 1080p, a busy screen, no peers) and prints
the medians as JSON, without touching RESULTS.md: the quick loop for work on the encoder.

A screenshot is timed from sending the request until its body is read, over one keep-alive
connection; the ``X-Screenshot-Cache`` answers are counted so a row says which it measured.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import median_ms, timed

if TYPE_CHECKING:
    from agent.session.devdesktop import DevDesktop
    from bench.bench_core import Http


class Scribble:
    """A one-pixel window of our own X connection whose colour changes before each timed request,
    so that every screenshot is a fresh grab + encode (the unchanged-screen cache never answers)."""

    def __init__(self, display_name: str) -> None:
        from Xlib.display import Display

        self.display = Display(display_name)
        screen = self.display.screen()
        self.window = screen.root.create_window(
            0, 0, 1, 1, 0, screen.root_depth, background_pixel=0, override_redirect=True
        )
        self.window.map()
        self.display.sync()
        self.colour = 0

    def change(self) -> None:
        self.colour = (self.colour + 0x010203) & 0xFFFFFF
        self.window.change_attributes(background_pixel=self.colour)
        self.window.clear_area()
        self.display.sync()

    def close(self) -> None:
        self.window.destroy()
        self.display.close()


def screenshot_series(
    http: Http, queries: tuple[tuple[str, str], ...], runs: int, scribble: Scribble | None
) -> dict[str, dict[str, Any]]:
    """Medians over ``runs`` rounds, each asking every query once in turn (so the machine's drift
    touches them alike); with ``scribble`` the screen changes (untimed) before each request."""
    samples: dict[str, list[float]] = {label: [] for label, _ in queries}
    caches: dict[str, list[str | None]] = {label: [] for label, _ in queries}
    sizes: dict[str, int] = {}
    for round_ in range(runs + 5):
        for label, query in queries:
            path = f"/desktop/screenshot?{query}"
            if scribble is not None:
                scribble.change()
            started = time.perf_counter()
            http.conn.request("GET", path, None, http.headers)
            response = http.conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
            if round_ >= 5:  # warm-up left out
                samples[label].append(elapsed)
                caches[label].append(response.getheader("X-Screenshot-Cache"))
                sizes[label] = len(body)
    return {
        label: {
            "ms": median_ms(samples[label]),
            "bytes": sizes[label],
            "hits": f"{caches[label].count('hit')}/{len(caches[label])}",
        }
        for label, _ in queries
    }


FRESH_QUERIES = (
    ("jpeg_q75", "format=jpeg&quality=75"),
    ("png", "format=png"),
    ("webp_q75", "format=webp&quality=75"),
    ("jpeg_q75_half", "format=jpeg&quality=75&scale=0.5"),
)


def fresh_series(
    http: Http, queries: tuple[tuple[str, str], ...], runs: int, scribble: Scribble
) -> dict[str, dict[str, Any]]:
    """The fresh-grab medians: JPEG and PNG in one rotation, WebP in a series of its own after it.
    A WebP encode (~20 ms, megabytes of work buffers) leaves the CPU's caches cold for whatever
    runs next: in the rotation, the request after it measured WebP's after-effects (+0.5-1 ms)."""
    rotation = tuple(query for query in queries if not query[0].startswith("webp"))
    alone = tuple(query for query in queries if query[0].startswith("webp"))
    series = screenshot_series(http, rotation, runs, scribble)
    if alone:
        series.update(screenshot_series(http, alone, runs, scribble))
    return {label: series[label] for label, _ in queries}


def bench_screenshots(
    http: Http, desktop: DevDesktop, runs: int, queries: tuple[tuple[str, str], ...] = FRESH_QUERIES
) -> dict[str, Any]:
    from PIL import Image

    results: dict[str, Any] = {}
    scribble = Scribble(desktop.display)
    try:
        for label, series in fresh_series(http, queries, runs, scribble).items():
            results[f"{label}_ms"], results[f"{label}_bytes"] = series["ms"], series["bytes"]
            results[f"{label}_hits"] = series["hits"]  # must be 0/N: these are fresh grabs
    finally:
        scribble.close()
    png = Image.open(io.BytesIO(http.call("GET", "/desktop/screenshot?format=png"))).convert("RGB")

    def pillow_level1() -> bytes:
        out = io.BytesIO()
        png.save(out, "PNG", compress_level=1)
        return out.getvalue()

    results["pillow_png_level1_encode_ms"] = median_ms(timed(pillow_level1, max(10, runs // 5)))
    results["pillow_png_level1_bytes"] = len(pillow_level1())
    if "png_bytes" in results:
        results["png_size_vs_pillow_level1"] = round(
            results["png_bytes"] / results["pillow_png_level1_bytes"], 2
        )
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "shot.png"
        results["scrot_ms"] = median_ms(
            timed(lambda: subprocess.run(["scrot", "-o", str(target)], env=desktop.env, check=True), 15, 2)
        )
    return results


def bench_unchanged(http: Http, runs: int) -> dict[str, Any]:
    """The same screenshot again on a screen that does not change: the cache's answer."""
    series = screenshot_series(http, (("jpeg", "format=jpeg&quality=75"), ("png", "format=png")), runs, None)
    jpeg, png = series["jpeg"], series["png"]
    return {
        "jpeg_q75_ms": jpeg["ms"],
        "jpeg_q75_hits": jpeg["hits"],
        "png_ms": png["ms"],
        "png_hits": png["hits"],
    }


def bench_cua_screenshot(desktop: DevDesktop, runs: int = 15) -> dict[str, Any]:
    """cua's computer-server on the same desktop: POST /cmd {"command": "screenshot"} (base64 PNG)."""
    try:
        from bench.peer_cua import CuaServer

        with CuaServer(dict(desktop.env)) as cua:
            png = cua.screenshot_png()
            return {"ms": median_ms(timed(cua.screenshot_png, runs, 2)), "bytes": len(png)}
    except Exception as exc:  # the peer could not be installed or started here: say so in the table
        return {"ms": None, "error": f"{type(exc).__name__}: {exc}"[:200]}


def main() -> int:
    from agent.session.devdesktop import DevDesktop
    from bench.bench_core import Http, busy_screen
    from tests.conftest import start_agent

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        for width, height in ((1280, 720), (1920, 1080)):
            with DevDesktop(width=width, height=height) as desktop:
                home = Path(tmp_name) / f"{width}x{height}"
                home.mkdir()
                agent = start_agent(dict(desktop.env), home, "--display", desktop.display)
                apps = busy_screen(desktop)
                scribble = Scribble(desktop.display)
                try:
                    series = fresh_series(Http(agent), FRESH_QUERIES, args.runs, scribble)
                    results[f"{width}x{height}"] = series
                finally:
                    scribble.close()
                    for app in apps:
                        app.terminate()
                        app.wait()
                    agent.stop()
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
