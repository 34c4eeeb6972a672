"""GET /ws: pipelined actions through the registry, observed by a GTK app, xdotool and the X
server itself; its auth (bearer header, single-use tickets, Origin) and what a client that goes
away leaves behind (nothing)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from PIL import Image
from Xlib.display import Display

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, run_observer
from tests.live_client import WsClient, bearer, ws_url
from tests.observers import EventLogger
from tests.waiting import wait_until
from tests.x11.test_disconnect import held


@pytest.fixture()
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def connect(session: aiohttp.ClientSession, agent: RunningAgent) -> WsClient:
    return WsClient(await session.ws_connect(ws_url(agent), headers=bearer(agent)))


def typed(events: list[dict[str, object]]) -> str:
    """The characters of the key presses the app received (modifiers make none)."""
    return "".join(str(e["text"]) for e in events if e["event"] == "key" and e["text"] != "\x00")


async def test_a_pipelined_burst_of_100_mixed_actions(
    agent: RunningAgent, desktop: DevDesktop, logger: EventLogger, session: aiohttp.ClientSession
) -> None:
    """100 actions sent without waiting: 100 answers with their ids; the typed characters arrive
    in the GTK app in the order sent, the pointer ends where the last move put it, and every
    screenshot comes as a binary frame that decodes to an image of the screen's size."""
    client = await connect(session, agent)
    x0, y0 = logger.area_center
    text = "pipelined-WS-burst-0123456789-abcdefghij"  # 40 characters
    messages: list[dict[str, object]] = []
    chars = iter(text)
    moves = []
    for i in range(100):
        kind = i % 5
        if kind in (0, 2) or (kind == 4 and i % 10 == 4):
            char = next(chars, None)
            if char is not None:
                messages.append({"type": "type", "text": char})
                continue
        if kind == 1:
            point = (x0 - 50 + i, y0 - 30 + i // 2)
            moves.append(point)
            messages.append({"type": "move", "x": point[0], "y": point[1]})
        elif kind == 3 and i % 20 == 3:
            messages.append({"type": "screenshot", "format": "png"})
        elif kind == 3:
            messages.append({"type": "screen_size"})
        else:
            messages.append({"type": "cursor_position"})
    assert len(messages) == 100
    typed_text = "".join(str(m["text"]) for m in messages if m["type"] == "type")
    await client.request(
        {"type": "subscribe", "events": ["window.focused", "window.created"], "request_id": "s"}
    )
    for index, message in enumerate(messages):
        message["request_id"] = f"r{index}"
        await client.send(message)

    await client.wait_for(lambda: len(client.answers) == 101, timeout=60, what="100 answers")
    del client.answers["s"]
    client.answer_order.remove("s")
    assert set(client.answers) == {f"r{i}" for i in range(100)}
    failed = [a for a in client.answers.values() if not a["success"]]
    assert failed == []
    # Input answers come back in the order the actions were sent.
    input_ids = [m["request_id"] for m in messages if m["type"] in ("type", "move")]
    assert [i for i in client.answer_order if i in set(input_ids)] == input_ids

    # Typing goes to the focused window: another test's window taking the focus would explain
    # lost characters (the subscription made before the burst would have seen it).
    assert [
        e
        for e in client.events
        if e["type"] != "window.focused"
        or e["window"] is None
        or e["window"]["id"] != hex(logger.ready["window"])
    ] == []
    received = logger.collect()
    assert typed(received) == typed_text, " ".join(str(e["keyval"]) for e in received if e["event"] == "key")
    location = run_observer(desktop, "xdotool", "getmouselocation", "--shell")
    assert f"X={moves[-1][0]}\nY={moves[-1][1]}\n" in location

    screenshots = [client.answers[m["request_id"]] for m in messages if m["type"] == "screenshot"]
    assert len(screenshots) == 5
    size = run_observer(desktop, "xdpyinfo").split("dimensions:")[1].split()[0]
    for answer in screenshots:
        assert answer["binary"]["content_type"] == "image/png"
        assert len(answer["binary_data"]) == answer["binary"]["bytes"]
        image = Image.open(io.BytesIO(answer["binary_data"]))
        assert f"{image.width}x{image.height}" == size
    await client.close()


async def test_answers_and_errors_use_the_http_envelopes(
    agent: RunningAgent, session: aiohttp.ClientSession
) -> None:
    client = await connect(session, agent)
    ok = await client.request({"type": "screen_size", "request_id": 7})
    assert ok["request_id"] == 7 and ok["success"] is True and set(ok["result"]) == {"width", "height"}
    bad = await client.request({"type": "click", "x": "left", "request_id": "bad"})
    assert bad["success"] is False and bad["status"] == 400
    assert bad["error"]["code"] == "INVALID_ARGUMENT" and "x" in bad["error"]["message"]
    unknown = await client.request({"type": "teleport", "request_id": "u"})
    assert unknown["error"]["code"] == "INVALID_ARGUMENT" and "teleport" in unknown["error"]["message"]
    rest_only = await client.request({"type": "process_output", "id": "x", "request_id": "p"})
    assert rest_only["status"] == 400 and "REST only" in rest_only["error"]["message"]
    base64 = await client.request({"type": "screenshot", "base64": True, "format": "jpeg", "request_id": "b"})
    assert "binary" not in base64 and base64["result"]["format"] == "jpeg" and base64["result"]["image"]
    await client.ws.send_str("not json")
    await client.wait_for(lambda: client.answers.get(None), what="the answer to a frame that is not JSON")
    assert client.answers[None]["error"]["code"] == "INVALID_ARGUMENT"
    await client.close()


async def test_no_token_is_refused_and_a_ticket_opens_one_connection(
    agent: RunningAgent, client: httpx.Client, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await session.ws_connect(ws_url(agent))
    assert refused.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as forged:
        await session.ws_connect(ws_url(agent, "ticket=made-up"))
    assert forged.value.status == 401

    ticket = client.post("/ws/ticket", json={}).json()
    assert ticket["expires_in"] > 0
    first = WsClient(await session.ws_connect(ws_url(agent, f"ticket={ticket['ticket']}")))
    answer = await first.request({"type": "screen_size", "request_id": "t"})
    assert answer["success"] is True
    await first.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as spent:
        await session.ws_connect(ws_url(agent, f"ticket={ticket['ticket']}"))
    assert spent.value.status == 401
    # A ticket is not a token: it opens nothing else.
    other = client.post("/ws/ticket", json={}).json()["ticket"]
    assert httpx.get(f"{agent.url}/desktop/screen-size?ticket={other}").status_code == 401
    # And asking for one needs the token.
    assert httpx.post(f"{agent.url}/ws/ticket", json={}).status_code == 401


async def test_a_web_page_cannot_open_the_socket(agent: RunningAgent, session: aiohttp.ClientSession) -> None:
    """A page in the desktop's browser (another origin, even on localhost) is refused; the
    agent's own origin is accepted."""
    port = agent.url.rsplit(":", 1)[1]
    for origin in ("http://evil.example", f"http://localhost:{int(port) + 1}", "null"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url(agent), headers={**bearer(agent), "Origin": origin})
        assert refused.value.status == 403, origin
    own = await session.ws_connect(ws_url(agent), headers={**bearer(agent), "Origin": agent.url})
    await own.close()


async def test_a_plain_get_is_a_clear_400(agent: RunningAgent, client: httpx.Client) -> None:
    answer = client.get("/ws")
    assert answer.status_code == 400
    assert "WebSocket" in answer.json()["error"]["message"]


async def test_a_client_that_goes_away_leaves_nothing_held(
    agent: RunningAgent, desktop: DevDesktop, session: aiohttp.ClientSession, client: httpx.Client
) -> None:
    xserver = Display(desktop.display)
    try:
        ws = await connect(session, agent)
        await ws.send({"type": "key_down", "key": "shift", "request_id": "k"})
        await ws.send({"type": "mouse_down", "button": "left", "request_id": "m"})
        await ws.send({"type": "wait", "seconds": 30, "request_id": "w"})  # still running when we leave
        await ws.wait_for(lambda: "m" in ws.answers, what="mouse_down's answer")
        wait_until(lambda: held(xserver) == (True, True), timeout=10, what="shift and the button held")
        await ws.close()
        wait_until(lambda: held(xserver) == (False, False), timeout=10, what="shift and the button released")
        # The input lane's wait was cancelled: the next input is answered at once.
        assert client.post("/desktop/move", json={"x": 3, "y": 3}, timeout=10).status_code == 200
        metrics = client.get("/metrics").text
        assert 'computer_agent_actions_total{result="CANCELLED",type="wait"}' in metrics
    finally:
        xserver.close()
