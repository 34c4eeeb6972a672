"""The Python SDK (agent.client) against a real agent on Xvfb, sync and async: every effect is
seen by xdotool, the GTK event logger, the X server's own size or the file system."""

from __future__ import annotations

import asyncio
import base64
import io
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PIL import Image

from agent.client import Agent, AsyncAgent
from agent.client import errors as sdk_errors
from agent.models.exec import CommandExitEvent, OutputEvent, StartEvent
from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, run_observer
from tests.observers import EventLogger


def pointer(desktop: DevDesktop) -> tuple[int, int]:
    fields = dict(part.split(":") for part in run_observer(desktop, "xdotool", "getmouselocation").split())
    return int(fields["x"]), int(fields["y"])


def screen_size(desktop: DevDesktop) -> tuple[int, int]:
    line = next(x for x in run_observer(desktop, "xdpyinfo").splitlines() if "dimensions:" in x)
    width, height = line.split()[1].split("x")
    return int(width), int(height)


@pytest.fixture()
def sdk(agent: RunningAgent) -> Iterator[Agent]:
    with Agent(agent.url, token=agent.token) as client:
        yield client


@pytest.fixture()
async def async_sdk(agent: RunningAgent) -> AsyncIterator[AsyncAgent]:
    async with AsyncAgent(agent.url, token=agent.token) as client:
        yield client


def entry_point(logger: EventLogger) -> tuple[int, int]:
    return logger.ready["area_x"] + 50, logger.ready["area_y"] - 15


def test_click_and_type(sdk: Agent, logger: EventLogger, desktop: DevDesktop) -> None:
    x, y = logger.area_center
    assert sdk.click(x, y).success is True
    assert pointer(desktop) == (x, y)
    presses = [(e["kind"], e["button"]) for e in logger.collect() if e["event"] == "button"]
    assert ("press", 1) in presses and ("release", 1) in presses
    sdk.click(*entry_point(logger))
    sdk.key("ctrl+a BackSpace")
    sdk.type("typed by the SDK: ünïcödé")
    sdk.key("Return")
    assert logger.next("entry")["text"] == "typed by the SDK: ünïcödé"


def test_screenshot_bytes_and_pil(sdk: Agent, desktop: DevDesktop) -> None:
    shot = sdk.screenshot()
    assert shot.data[:8] == b"\x89PNG\r\n\x1a\n" and shot.format == "png"
    assert (shot.width, shot.height) == screen_size(desktop)
    assert Image.open(io.BytesIO(sdk.screenshot_bytes(format="jpeg"))).format == "JPEG"
    assert sdk.screenshot_image(scale=0.5).size == tuple(n // 2 for n in screen_size(desktop))


def test_windows_and_tree(sdk: Agent, logger: EventLogger, desktop: DevDesktop) -> None:
    seen_by_x = {int(w) for w in run_observer(desktop, "xdotool", "search", "--name", "event-logger").split()}
    listed = {int(w.id, 16): w for w in sdk.list_windows().windows}
    assert seen_by_x & listed.keys()
    tree = sdk.accessibility_tree(app=str(logger.process.pid))
    assert tree.tree is not None
    found = sdk.accessibility_find(role="text", app=str(logger.process.pid))
    assert found.nodes


def test_exec_stream_is_an_iterator_and_exec_runs(sdk: Agent, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    events = list(sdk.exec_stream(["sh", "-c", f"echo one; echo two >&2; touch {marker}; exit 3"]))
    assert isinstance(events[0], StartEvent) and isinstance(events[-1], CommandExitEvent)
    assert events[-1].exit_code == 3 and marker.exists()
    out = "".join(e.data for e in events if isinstance(e, OutputEvent) and e.type == "stdout")
    assert out == "one\n"
    assert sdk.exec(["printf", "%s", "hi"]).stdout == "hi"


def test_files_up_and_down_stream(sdk: Agent, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    remote = str(tmp_path / "remote" / "copy.bin")
    seen: list[int] = []
    entry = sdk.upload(source, remote, progress=lambda done, total: seen.append(done))
    assert entry.size == source.stat().st_size and Path(remote).read_bytes() == source.read_bytes()
    assert seen[-1] == source.stat().st_size and len(seen) > 1  # streamed in chunks
    back = tmp_path / "back.bin"
    assert sdk.download(remote, back) == source.stat().st_size
    assert back.read_bytes() == source.read_bytes()
    assert sdk.files_put(remote, iter([b"a", b"b", b"c"])).size == 3  # chunked upload
    assert Path(remote).read_bytes() == b"abc"
    with sdk.files_get(remote, range="bytes=1-1") as partial:
        assert partial.read() == b"b"


def test_errors_are_typed(sdk: Agent) -> None:
    with pytest.raises(sdk_errors.WindowNotFound) as missing:
        sdk.window_size("0x7fffffe")
    assert missing.value.code == "WINDOW_NOT_FOUND" and missing.value.status == 404
    assert isinstance(missing.value, sdk_errors.NotFound) and missing.value.request_id
    with pytest.raises(sdk_errors.InvalidArgument) as invalid:
        sdk.click(10, 10, button="thumb")  # type: ignore[arg-type]
    assert invalid.value.details["errors"][0]["field"] == "button"
    with Agent(sdk.url, token="wrong") as stranger, pytest.raises(sdk_errors.Unauthenticated):
        stranger.screen_size()
    with pytest.raises(sdk_errors.FileNotFound):
        sdk.files_get("/nonexistent/file")


def test_actions_and_batch(sdk: Agent, desktop: DevDesktop) -> None:
    sdk.action("move", x=123, y=234)
    assert pointer(desktop) == (123, 234)
    answer = sdk.batch([{"type": "move", "x": 321, "y": 111}, {"type": "cursor_position"}])
    assert answer["success"] and answer["results"][1]["result"] == {"x": 321, "y": 111}
    assert sdk.move_mouse(x=5, y=6) is not None  # an /actions-only operation
    assert pointer(desktop) == (5, 6)


async def test_async_client(
    async_sdk: AsyncAgent, logger: EventLogger, desktop: DevDesktop, tmp_path: Path
) -> None:
    x, y = logger.area_center
    await async_sdk.click(x, y)
    assert pointer(desktop) == (x, y)
    await async_sdk.click(*entry_point(logger))
    await async_sdk.key("ctrl+a BackSpace")
    await async_sdk.type("async typing")
    await async_sdk.key("Return")
    assert (await asyncio.to_thread(logger.next, "entry"))["text"] == "async typing"
    shot = await async_sdk.screenshot()
    assert (shot.width, shot.height) == screen_size(desktop) and shot.to_pil().size == screen_size(desktop)
    windows = await async_sdk.list_windows()
    assert any(w.title == "event-logger" for w in windows.windows)
    assert (await async_sdk.accessibility_tree(app=str(logger.process.pid))).tree is not None
    events = [event async for event in async_sdk.exec_stream("echo streamed; exit 4")]
    assert isinstance(events[-1], CommandExitEvent) and events[-1].exit_code == 4
    # Control characters are escaped six-fold in JSON: output lines far over aiohttp's line limit.
    escaped = [e async for e in async_sdk.exec_stream("head -c 1000000 /dev/zero | tr '\\0' '\\1'")]
    assert sum(len(e.data) for e in escaped if isinstance(e, OutputEvent)) == 1_000_000
    source = tmp_path / "a.bin"
    source.write_bytes(os.urandom(2 * 1024 * 1024))
    remote = str(tmp_path / "async-copy.bin")
    await async_sdk.upload(source, remote)
    assert Path(remote).read_bytes() == source.read_bytes()
    await async_sdk.download(remote, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    with pytest.raises(sdk_errors.WindowNotFound):
        await async_sdk.window_position("0x7fffffe")


def test_wait_for_and_screenshot_after(sdk: Agent, logger: EventLogger, desktop: DevDesktop) -> None:
    waited = sdk.wait_for("window", title="^event-logger$", timeout=5)
    assert waited.met and waited.window is not None
    assert int(waited.window.id, 16) in {
        int(w) for w in run_observer(desktop, "xdotool", "search", "--name", "^event-logger$").split()
    }
    assert not sdk.wait_for("window", title="^no such window$", timeout=0.3).met
    x, y = logger.area_center
    clicked = sdk.click(x, y, screenshot_after={"format": "png"})
    assert pointer(desktop) == (x, y)
    shot = clicked.screenshot  # type: ignore[attr-defined]  # typed Success; the answer model adds it
    with Image.open(io.BytesIO(base64.b64decode(shot.image))) as image:
        assert image.size == screen_size(desktop)


def test_the_docs_snippet_runs_as_pasted(
    agent: RunningAgent, desktop: DevDesktop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/clients.md's SDK example, with only the URL and token file put in, runs to the end."""
    text = (Path(__file__).parents[2] / "docs" / "clients.md").read_text()
    snippet = text.split("## Python SDK", 1)[1].split("```python\n", 1)[1].split("\n```", 1)[0]
    token_file = tmp_path / "token"
    token_file.write_text(agent.token)
    snippet = snippet.replace("http://127.0.0.1:8000", agent.url).replace("/path/to/token", str(token_file))
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "docs/clients.md", "exec"), {"__name__": "snippet"})
    with Image.open(tmp_path / "after-click.png") as settled:
        assert settled.size == screen_size(desktop)
    assert (tmp_path / "notes-copy.txt").read_text() == "some notes\n"
    assert (tmp_path / "shot.png").stat().st_size > 0


def test_vendor_calls_send_the_models_own_action(sdk: Agent, logger: EventLogger) -> None:
    """openai_computer sends OpenAI's action `type` (the model's data, not an operation tag)."""
    x, y = logger.area_center
    output = sdk.openai_computer("click", x, y, button="right")
    assert output.type == "computer_screenshot" and output.image_url.startswith("data:image/png;base64,")
    presses = [(e["kind"], e["button"]) for e in logger.collect() if e["event"] == "button"]
    assert presses == [("press", 3), ("release", 3)]
    content = sdk.anthropic_computer("left_click", coordinate=[x, y])
    assert [block.type for block in content.root] == ["image"]
    assert [(e["kind"], e["button"]) for e in logger.collect() if e["event"] == "button"] == [
        ("press", 1),
        ("release", 1),
    ]
