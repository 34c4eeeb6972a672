"""The browser's URL and proxy policy, its exit descriptions, and the CDP pipe framing (NUL-ended
JSON messages split and merged arbitrarily by the pipe, as Chromium's large replies are)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import orjson
import pytest

from agent.browser.cdp import CdpConnection, CdpError, ConnectionClosed
from agent.browser.policy import check_proxy, check_url, describe_exit
from agent.browser.process import mark_clean_exit, profile_dir
from agent.errors import InvalidArgument, UrlSchemeNotAllowed
from agent.session.user import resolve_user


@pytest.mark.parametrize(
    "url", ["http://example.com/", "https://x.test/a?b#c", "about:blank", "data:text/html,hi"]
)
def test_ordinary_urls_open(url: str) -> None:
    assert check_url(url, allow_unsafe=False) == url


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "file:///etc/passwd", "chrome://settings", "FILE:///x"]
)
def test_unsafe_schemes_need_the_option(url: str) -> None:
    with pytest.raises(UrlSchemeNotAllowed) as refused:
        check_url(url, allow_unsafe=False)
    assert refused.value.details["option"] == "browser_allow_unsafe_urls"
    assert check_url(url, allow_unsafe=True) == url


@pytest.mark.parametrize("url", ["example.com", "/relative", "ftp://example.com/", "gopher://x"])
def test_other_urls_are_bad_input(url: str) -> None:
    with pytest.raises(InvalidArgument):
        check_url(url, allow_unsafe=True)


def test_proxy_urls() -> None:
    assert check_proxy(None) is None and check_proxy("  ") is None
    assert check_proxy("HTTP://127.0.0.1:3128/") == "http://127.0.0.1:3128"
    assert check_proxy("socks5://[::1]:1080") == "socks5://[::1]:1080"
    for bad in ("ftp://h:1", "http://h", "http://h:1/path", "http://u:p@h:1", "http://h:99999", "h:1"):
        with pytest.raises(InvalidArgument):
            check_proxy(bad)


def test_exit_descriptions() -> None:
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(0) == "was closed (exit code 0)"
    assert describe_exit(21) == "exited with code 21"
    assert describe_exit(None) == "exited"


async def test_cdp_framing_over_real_pipes() -> None:
    """A peer on real pipes answers in fragments and several messages per write; replies find
    their commands, events reach listeners, an error is a CdpError, EOF fails what is pending."""
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    connection = await CdpConnection.open(from_browser_r, to_browser_w)
    events: list[tuple[str, str | None]] = []
    connection.listen(lambda method, params, session: events.append((method, session)))

    first = asyncio.ensure_future(connection.send("A.big"))
    second = asyncio.ensure_future(connection.send("B.fails", session="S1"))
    third = asyncio.ensure_future(connection.send("C.never"))
    await asyncio.sleep(0.05)
    sent = os.read(to_browser_r, 65536).split(b"\0")[:-1]
    commands = [orjson.loads(raw) for raw in sent]
    assert [c["method"] for c in commands] == ["A.big", "B.fails", "C.never"]
    assert commands[1]["sessionId"] == "S1"

    big = "x" * 300_000
    stream = (
        orjson.dumps({"method": "Ev.one", "params": {}, "sessionId": "S1"})
        + b"\0"
        + orjson.dumps({"id": commands[1]["id"], "error": {"code": -32000, "message": "No target"}})
        + b"\0"
        + orjson.dumps({"id": commands[0]["id"], "result": {"value": big}})
        + b"\0"
    )
    for start in range(0, len(stream), 4096):  # fragments that cut messages anywhere
        os.write(from_browser_w, stream[start : start + 4096])
        await asyncio.sleep(0)
    assert (await first)["value"] == big
    with pytest.raises(CdpError, match="No target"):
        await second
    assert events == [("Ev.one", "S1")]

    os.close(from_browser_w)  # the browser exits
    with pytest.raises(ConnectionClosed):
        await third
    await asyncio.wait_for(connection.closed.wait(), 5)
    assert events[-1] == ("Connection.closed", None)
    with pytest.raises(ConnectionClosed):
        await connection.send("D.after")
    connection.close()
    os.close(to_browser_r)


def test_a_crashed_profile_is_marked_clean_before_launch(tmp_path: Path) -> None:
    """Chromium leaves exit_type Crashed when killed; the next start must not offer "Restore pages?"."""
    preferences = tmp_path / "Default" / "Preferences"
    preferences.parent.mkdir()
    preferences.write_text(json.dumps({"profile": {"exit_type": "Crashed", "name": "x"}, "other": 1}))
    mark_clean_exit(tmp_path)
    values = json.loads(preferences.read_text())
    assert values == {"profile": {"exit_type": "Normal", "exited_cleanly": True, "name": "x"}, "other": 1}
    mark_clean_exit(tmp_path / "missing")  # a new profile: nothing to do, no error


def test_the_profile_follows_xdg_state_home(tmp_path: Path) -> None:
    user = resolve_user(None)
    assert (
        profile_dir(user, ":7", {"XDG_STATE_HOME": str(tmp_path)})
        == tmp_path / "computer-agent" / "chromium-_7"
    )
    relative = profile_dir(user, ":7", {"XDG_STATE_HOME": "relative/dir"})  # not absolute: ignored
    assert relative == Path(user.home) / ".local" / "state" / "computer-agent" / "chromium-_7"


@pytest.mark.parametrize(
    "proxy",
    [
        "http://a;direct:1",
        "http://a b:1",
        "http://127.0.0.1:0",
        "http://h:1/?x",
        "http://h:1/#x",
        "http://h:99999",
    ],
)
def test_loose_proxy_urls_are_refused(proxy: str) -> None:
    with pytest.raises(InvalidArgument):
        check_proxy(proxy)


@pytest.mark.parametrize("url", ["http://", "https:///path", "http://:80/"])
def test_a_web_url_without_a_host_is_a_400(url: str) -> None:
    with pytest.raises(InvalidArgument, match="host"):
        check_url(url, allow_unsafe=False)
