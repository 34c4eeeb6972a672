"""What real clients send (issue 13): each habit against a real agent on Xvfb, its effect seen
by xdotool or a GTK app, and every exchange checked both ways against the served OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, run_observer
from tests.observers import EventLogger
from tests.openapi_check import ERROR_HEADER, Document, Recorder


@pytest.fixture(scope="module")
def document(agent: RunningAgent) -> Document:
    with agent.client() as http:
        return Document(http.get("/openapi.json").json())


@pytest.fixture()
def checked(agent: RunningAgent, document: Document) -> Iterator[httpx.Client]:
    """A client whose every exchange is checked against the served document after the test."""
    recorder = Recorder()
    with agent.client(event_hooks={"response": [recorder]}) as http:
        yield http
    assert recorder.exchanges
    for response in recorder.exchanges:
        document.check(response)


def pointer(desktop: DevDesktop) -> tuple[int, int]:
    fields = dict(part.split(":") for part in run_observer(desktop, "xdotool", "getmouselocation").split())
    return int(fields["x"]), int(fields["y"])


def buttons(events: list[dict[str, Any]]) -> list[tuple[str, int, int, int]]:
    return [(e["kind"], e["button"], e["x"], e["y"]) for e in events if e["event"] == "button"]


def test_a_cache_buster_query_parameter_is_ignored(checked: httpx.Client) -> None:
    shot = checked.get("/desktop/screenshot", params={"t": "123", "format": "JPEG"})
    assert shot.status_code == 200, shot.text
    assert shot.headers["Content-Type"] == "image/jpeg" and shot.content[:3] == b"\xff\xd8\xff"
    for route in ("/health", "/desktop/cursor", "/desktop/windows", "/desktop/screen-size"):
        answer = checked.get(route, params={"_": "1700000000", "t": "x"})
        assert answer.status_code == 200, (route, answer.text)


def test_integral_and_fractional_coordinates(checked: httpx.Client, desktop: DevDesktop) -> None:
    assert checked.post("/desktop/move", json={"x": 500.0, "y": 300}).status_code == 200
    assert pointer(desktop) == (500, 300)
    # Fractions round to the nearest pixel, halves up, on every channel.
    assert checked.post("/actions", json={"type": "move", "x": 210.5, "y": 99.49}).status_code == 200
    assert pointer(desktop) == (211, 99)
    batch = checked.post("/batch", json={"actions": [{"type": "move", "x": 320.7, "y": 240.2}]})
    assert batch.json()["success"] is True
    assert pointer(desktop) == (321, 240)


def test_a_click_at_a_float_lands_there(checked: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    assert checked.post("/desktop/click", json={"x": x + 0.0, "y": y - 0.4}).status_code == 200
    assert buttons(logger.collect()) == [("press", 1, x, y), ("release", 1, x, y)]


def test_strictness_stays_where_it_protects(checked: httpx.Client, desktop: DevDesktop) -> None:
    checked.post("/desktop/move", json={"x": 40, "y": 40})
    for body, field in [
        ({"direction": "down", "amount": 2.5}, "amount"),  # not a coordinate: no rounding
        ({"x": True, "y": 5, "direction": "down"}, "x"),  # booleans are not numbers
        ({"x": "5", "y": 5, "direction": "down"}, "x"),  # strings are not numbers in JSON
    ]:
        answer = checked.post("/desktop/scroll", json=body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["details"]["errors"][0]["field"] == field
    nan = checked.post(
        "/desktop/move", content=b'{"x": NaN, "y": 5}', headers={"Content-Type": "application/json"}
    )
    assert nan.status_code == 400
    assert pointer(desktop) == (40, 40)  # nothing moved


def test_null_means_absent_and_peers_fields_are_ignored(checked: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    action = {
        "type": "click",
        "x": x,
        "y": y,
        "button": None,  # optional: its default, left
        "text": None,  # unknown but null: absent
        "include_context": True,
        "tab_id": "tab-1",
        "request_id": "req-1",
    }
    answer = checked.post("/actions", json=action)
    assert answer.status_code == 200, answer.text
    assert buttons(logger.collect()) == [("press", 1, x, y), ("release", 1, x, y)]


def test_enums_any_case(checked: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    assert checked.post("/desktop/click", json={"x": x, "y": y, "button": "RIGHT"}).status_code == 200
    assert buttons(logger.collect()) == [("press", 3, x, y), ("release", 3, x, y)]


def test_a_typo_names_the_field_it_misspells(checked: httpx.Client, logger: EventLogger) -> None:
    x, y = logger.area_center
    answer = checked.post("/desktop/click", json={"x": x, "y": y, "buton": "left"})
    assert answer.status_code == 400
    problem = answer.json()["error"]["details"]["errors"][0]
    assert problem["field"] == "buton" and problem["did_you_mean"] == "button"
    assert "did you mean 'button'" in answer.json()["error"]["message"]
    assert buttons(logger.collect()) == []  # refused before anything ran


def test_errors_name_what_is_missing(checked: httpx.Client, agent: RunningAgent, tmp_path: Path) -> None:
    for route, code in [
        ("/desktop/window/0x7ffffff/size", "WINDOW_NOT_FOUND"),
        ("/no/such/route", "ROUTE_NOT_FOUND"),
        ("/processes/nope", "PROCESS_NOT_FOUND"),
        (f"/files?path={tmp_path}/missing.txt", "FILE_NOT_FOUND"),
    ]:
        answer = checked.get(route)
        assert answer.status_code == 404, (route, answer.text)
        assert answer.json()["error"]["code"] == code
        assert answer.headers[ERROR_HEADER] == code
    with httpx.Client(base_url=agent.url) as anonymous:  # not even authenticated: still marked
        answer = anonymous.get("/desktop/cursor")
        assert answer.status_code == 401 and answer.headers[ERROR_HEADER] == "UNAUTHENTICATED"


def test_head_wherever_get(checked: httpx.Client) -> None:
    for route in ("/health", "/desktop/cursor", "/openapi.json"):
        get = checked.get(route)
        head = checked.head(route)
        assert head.status_code == get.status_code == 200, route
        assert head.content == b""
        assert head.headers["Content-Type"] == get.headers["Content-Type"]
        if route != "/desktop/cursor":  # the pointer's digits may differ between the two
            assert head.headers["Content-Length"] == get.headers["Content-Length"], route
    head = checked.head("/desktop/screenshot")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"] == "image/png" and int(head.headers["X-Screen-Width"]) > 0
    assert checked.head("/desktop/nope").status_code == 404
    assert checked.head("/desktop/click").status_code == 405  # POST only


def test_head_on_a_download_and_a_stream(checked: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "five.txt").write_bytes(b"12345")
    head = checked.head("/files", params={"path": str(tmp_path / "five.txt")})
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == "5"
    started = checked.post("/processes", json={"command": "sleep 30"}).json()
    try:
        # The stream's headers, at once, without waiting for the process (or reading its output).
        head = checked.head(f"/processes/{started['id']}/output", timeout=5)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["Content-Type"].startswith("application/x-ndjson")
        assert checked.get(f"/processes/{started['id']}").json()["state"] == "running"
    finally:
        checked.post(f"/processes/{started['id']}/signal", json={"signal": "KILL"})


def test_exec_truncated_is_a_boolean(checked: httpx.Client) -> None:
    whole = checked.post("/exec", json={"command": "printf abc"}).json()
    assert whole["truncated"] is False
    assert whole["truncated_streams"] == {"stdout": False, "stderr": False}
    cut = checked.post("/exec", json={"command": "printf abcdef", "max_output_length": 3}).json()
    assert cut["stdout"] == "abc" and cut["truncated"] is True
    assert cut["truncated_streams"] == {"stdout": True, "stderr": False}
