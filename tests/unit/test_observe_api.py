"""screenshot_after and wait-for at the HTTP layer, around a fake desktop (no X server).

What the real screen does is in tests/x11/test_observe.py; here: every input action takes the
field in every channel, the answer's shape, and the refusals.
"""

from __future__ import annotations

import base64

from agent.actions.registry import load_all
from tests.fakes import FakeDesktop
from tests.unit.conftest import Api


def test_every_input_action_takes_screenshot_after_and_nothing_else_does() -> None:
    for operation in load_all():
        takes = "screenshot_after" in operation.model.model_fields
        assert takes == operation.uses_input, operation.type
        if takes:
            assert operation.result is not None and "screenshot" in operation.result.model_fields


async def test_screenshot_after_comes_after_the_action(api: Api, fake_desktop: FakeDesktop) -> None:
    answer = await api.post(
        "/desktop/click", json={"x": 10, "y": 20, "screenshot_after": {"format": "jpeg", "max_width": 320}}
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert fake_desktop.log[-1][:3] == ("click", 10, 20)
    shot = body["screenshot"]
    assert body["success"] is True and shot["format"] == "jpeg" and shot["width"] == 320
    assert base64.b64decode(shot["image"])[:2] == b"\xff\xd8"  # a JPEG
    # No screen-change monitor on a fake desktop: captured at once, and it says it did not settle.
    assert shot["settled"] is False and shot["changes"] == 0


async def test_screenshot_after_in_actions_and_batch(api: Api) -> None:
    single = await api.post("/actions", json={"type": "key", "key": "a", "screenshot_after": {}})
    assert (await single.json())["result"]["screenshot"]["format"] == "png"
    batch = await api.post(
        "/batch",
        json={
            "actions": [{"type": "type", "text": "x"}, {"type": "type", "text": "y", "screenshot_after": {}}]
        },
    )
    steps = (await batch.json())["results"]
    assert "screenshot" not in steps[0]["result"] and "screenshot" in steps[1]["result"]


async def test_bad_screenshot_after_is_a_400(api: Api) -> None:
    for options, field in (
        ({"quiet_ms": 10001}, "screenshot_after.quiet_ms"),
        ({"format": "bmp"}, "screenshot_after.format"),
        ({"colour": True}, "screenshot_after.colour"),
    ):
        answer = await api.post("/desktop/move", json={"x": 1, "y": 1, "screenshot_after": options})
        assert answer.status == 400
        assert field in (await answer.json())["error"]["message"]


async def test_screen_conditions_need_the_monitor(api: Api) -> None:
    answer = await api.post("/desktop/wait-for", json={"condition": "screen_stable", "timeout": 1})
    assert answer.status == 503
    assert (await answer.json())["error"]["code"] == "DISPLAY_UNAVAILABLE"


async def test_element_conditions_need_accessibility(api: Api) -> None:
    answer = await api.post("/desktop/wait-for", json={"condition": "text", "text": "hello", "timeout": 1})
    assert answer.status == 403
    assert (await answer.json())["error"]["code"] == "ACCESSIBILITY_DISABLED"
