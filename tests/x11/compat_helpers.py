"""What the compat and coordinate-space tests share: posting a vendor's payload, reading images
back, and observing the pointer with xdotool."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import numpy as np
from PIL import Image

from agent.session.devdesktop import DevDesktop
from tests.conftest import run_observer
from tests.observers import DeviceEventRecorder
from tests.waiting import wait_until

ANTHROPIC = "/compat/anthropic/computer"
OPENAI = "/compat/openai/computer"
XGA = {"display_width_px": "1024", "display_height_px": "768"}


def post(client: httpx.Client, path: str, body: dict[str, Any], **kwargs: Any) -> Any:
    answer = client.post(path, json=body, **kwargs)
    assert answer.status_code == 200, (path, body, answer.text)
    return answer.json()


def refused(client: httpx.Client, path: str, body: dict[str, Any], **kwargs: Any) -> str:
    """The message of the 400 the agent answers, which must name the problem."""
    answer = client.post(path, json=body, **kwargs)
    assert answer.status_code == 400, (path, body, answer.status_code, answer.text)
    message: str = answer.json()["error"]["message"]
    return message


def pointer(desktop: DevDesktop) -> tuple[int, int]:
    shell = dict(
        line.split("=", 1) for line in run_observer(desktop, "xdotool", "getmouselocation", "--shell").split()
    )
    return int(shell["X"]), int(shell["Y"])


def move_pointer(desktop: DevDesktop, x: int, y: int) -> None:
    """Move the pointer with xdotool (not --sync: it waits forever when the pointer is there)."""
    run_observer(desktop, "xdotool", "mousemove", str(x), str(y))
    wait_until(lambda: pointer(desktop) == (x, y), timeout=5, what=f"the pointer at ({x}, {y})")


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


def anthropic_image(content: list[dict[str, Any]]) -> Image.Image:
    """The one image block of a tool_result content list."""
    [block] = [block for block in content if block["type"] == "image"]
    assert block["source"]["type"] == "base64" and block["source"]["media_type"] == "image/png"
    return png(base64.b64decode(block["source"]["data"]))


def openai_image(output: dict[str, Any]) -> Image.Image:
    assert output["type"] == "computer_screenshot"
    prefix = "data:image/png;base64,"
    assert output["image_url"].startswith(prefix)
    return png(base64.b64decode(output["image_url"][len(prefix) :]))


def buttons(events: list[dict[str, Any]]) -> list[tuple[str, int, int, int]]:
    return [(e["kind"], e["button"], e["x"], e["y"]) for e in events if e["event"] == "button"]


def keyvals(events: list[dict[str, Any]]) -> list[str]:
    return [e["keyval"] for e in events if e["event"] == "key"]


def is_black(image: Image.Image, box: tuple[int, int, int, int]) -> bool:
    """Whether every pixel of ``box`` (left, top, right, bottom) is black (letterbox padding)."""
    colours = image.crop(box).getcolors(maxcolors=1 << 16)
    return colours is not None and [colour for _, colour in colours] == [(0, 0, 0)]


def mean_difference(first: Image.Image, second: Image.Image) -> float:
    """The mean absolute difference of two same-sized RGB images, per channel (0..255)."""
    assert first.size == second.size
    difference = np.asarray(first, dtype=np.int16) - np.asarray(second, dtype=np.int16)
    return float(np.abs(difference).mean())


class MotionRecorder(DeviceEventRecorder):
    """Records the pointer motions the X server generates, before any app compresses them: the
    points a drag passed through."""

    def __init__(self, display_name: str) -> None:
        from Xlib import X

        self.points: list[tuple[int, int]] = []
        super().__init__(display_name, X.MotionNotify, X.MotionNotify)

    def on_event(self, event: Any) -> None:
        self.points.append((event.root_x, event.root_y))
