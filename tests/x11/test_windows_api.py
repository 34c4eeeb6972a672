"""The window routes over HTTP (REST, /actions, /batch, OpenAPI), observed with xwininfo and xprop."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.waiting import wait_until
from tests.x11.windowing import active_window, observed, start_app, stop_app, window_of, xprop


@pytest.fixture()
def zenity(desktop: DevDesktop) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc = start_app(desktop, "zenity", "--entry", "--title", "api ✓")
    window = window_of(desktop, proc.pid)
    yield proc, hex(window)
    stop_app(proc)


def test_list_has_the_seed_fields(
    desktop: DevDesktop, client: httpx.Client, zenity: tuple[subprocess.Popen[bytes], str]
) -> None:
    _, wid = zenity
    windows = client.get("/desktop/windows").json()["windows"]
    ours = next(w for w in windows if w["id"] == wid)
    seen = observed(desktop, int(wid, 16))
    assert ours["title"] == "api ✓"
    assert ours["class"] == "Zenity"
    assert (ours["x"], ours["y"], ours["width"], ours["height"]) == (
        seen.abs_x,
        seen.abs_y,
        seen.width,
        seen.height,
    )
    assert ours["pid"] == seen.pid
    assert {"focused", "minimized", "maximized", "desktop", "frame", "instance"} <= set(ours)


def test_rest_window_operations(
    desktop: DevDesktop, client: httpx.Client, zenity: tuple[subprocess.Popen[bytes], str]
) -> None:
    proc, wid = zenity
    window = int(wid, 16)
    base = f"/desktop/window/{wid}"
    # Left of and above the screen: EWMH's fields are signed (this was a 500, found by the
    # stateful schemathesis run); the WM may keep part of it on screen.
    assert client.post(f"{base}/move", json={"x": -40, "y": -30}).json() == {"success": True}
    wait_until(lambda: observed(desktop, window).abs_x < 0, what="the window to move left of the screen")
    assert client.post(f"{base}/move", json={"x": 77, "y": 88}).json() == {"success": True}
    assert client.post(f"{base}/resize", json={"width": 333, "height": 222}).json() == {"success": True}
    seen = observed(desktop, window)
    assert (seen.abs_x, seen.abs_y, seen.width, seen.height) == (77, 88, 333, 222)
    assert client.get(f"{base}/position").json() == {"x": 77, "y": 88}
    assert client.get(f"{base}/size").json() == {"width": 333, "height": 222}

    assert client.post(f"{base}/maximize", json={}).json() == {"success": True}
    assert "MAXIMIZED_HORZ" in xprop(desktop, window, "_NET_WM_STATE")
    assert client.post(f"{base}/minimize", json={}).json() == {"success": True}
    assert "Iconic" in xprop(desktop, window, "WM_STATE")
    assert client.post("/desktop/window/focus", json={"window_id": wid}).json() == {"success": True}
    assert active_window(desktop) == window
    assert client.post(f"{base}/close", json={}).json() == {"success": True}
    wait_until(lambda: proc.poll() is not None, what="zenity to exit")


@pytest.mark.parametrize(
    "case",
    [
        ("GET", "/desktop/window/0x123/size", None, 404, "WINDOW_NOT_FOUND"),
        ("POST", "/desktop/window/0x123/close", {}, 404, "WINDOW_NOT_FOUND"),
        ("POST", "/desktop/window/focus", {"window_id": "0x7ffffff"}, 404, "WINDOW_NOT_FOUND"),
        ("POST", "/desktop/window/focus", {"window_id": "not-an-id"}, 400, "INVALID_ARGUMENT"),
        ("POST", "/desktop/window/focus", {}, 400, "INVALID_ARGUMENT"),
        ("POST", "/desktop/window/0x123/resize", {"width": 0, "height": 5}, 400, "INVALID_ARGUMENT"),
        ("GET", "/desktop/window/zzz/position", None, 400, "INVALID_ARGUMENT"),
    ],
)
def test_errors(client: httpx.Client, case: tuple[str, str, dict[str, object] | None, int, str]) -> None:
    method, path, body, status, code = case
    answer = client.request(method, path, json=body)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


def test_actions_and_batch_reach_the_window_actions(
    desktop: DevDesktop, client: httpx.Client, zenity: tuple[subprocess.Popen[bytes], str]
) -> None:
    _, wid = zenity
    listed = client.post("/actions", json={"type": "list_windows"}).json()
    assert wid in [w["id"] for w in listed["result"]["windows"]]
    answer = client.post(
        "/batch",
        json={
            "actions": [
                {"type": "move_window", "window_id": wid, "x": 10, "y": 200},
                {"type": "resize_window", "window_id": wid, "width": 300, "height": 200},
                {"type": "window_position", "window_id": wid},
                {"type": "window_size", "window_id": wid},
                {"type": "set_clipboard", "text": "from a batch"},
                {"type": "get_clipboard"},
            ]
        },
    ).json()
    results = [step["result"] for step in answer["results"]]
    assert results[2:4] == [{"x": 10, "y": 200}, {"width": 300, "height": 200}]
    assert results[5] == {"text": "from a batch"}
    seen = observed(desktop, int(wid, 16))
    assert (seen.abs_x, seen.abs_y, seen.width, seen.height) == (10, 200, 300, 200)


def test_openapi_documents_every_route(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        "/desktop/windows": {"get"},
        "/desktop/window/focus": {"post"},
        "/desktop/window/{window_id}/size": {"get"},
        "/desktop/window/{window_id}/position": {"get"},
        "/desktop/window/{window_id}/resize": {"post"},
        "/desktop/window/{window_id}/move": {"post"},
        "/desktop/window/{window_id}/maximize": {"post"},
        "/desktop/window/{window_id}/minimize": {"post"},
        "/desktop/window/{window_id}/close": {"post"},
        "/desktop/clipboard": {"get", "post"},
        "/desktop/launch": {"post"},
        "/desktop/environment": {"get"},
        "/desktop/wallpaper": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
