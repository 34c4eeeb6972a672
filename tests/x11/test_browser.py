"""The browser routes with Debian's real Chromium on Xvfb, observed through independent channels:
the pages report to a local test server what happens to them (load, resize, hidden, closed,
clicked), the window manager shows the window titles (wmctrl), psutil and ss see the process and
its sockets."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import RunningAgent, start_agent
from tests.waiting import wait_until
from tests.x11.pages import PageServer
from tests.x11.windowing import wmctrl


@pytest.fixture(scope="module")
def pages() -> Iterator[PageServer]:
    server = PageServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def state_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent's XDG_STATE_HOME: the browser's profile goes here, never to ~/.local/state."""
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def browser_agent(
    desktop: DevDesktop, tmp_path_factory: pytest.TempPathFactory, state_home: Path
) -> Iterator[RunningAgent]:
    state = state_home
    env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display, XDG_STATE_HOME=str(state))
    running = start_agent(env, tmp_path_factory.mktemp("browser-agent"), "--display", desktop.display)
    yield running
    running.stop()


@pytest.fixture()
def http(browser_agent: RunningAgent) -> Iterator[httpx.Client]:
    with browser_agent.client() as client:
        yield client


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def chromium_titles(desktop: DevDesktop) -> list[str]:
    return [title for _, title in wmctrl(desktop).values() if title.endswith(" - Chromium")]


def wait_for_title(desktop: DevDesktop, title: str) -> None:
    wait_until(
        lambda: f"{title} - Chromium" in chromium_titles(desktop),
        timeout=10,
        what=f"a Chromium window titled {title!r}",
    )


def test_launch_reuses_and_status_reports(http: httpx.Client, desktop: DevDesktop, state_home: Path) -> None:
    first = ok(http.post("/browser/launch", json={}))
    again = ok(http.post("/browser/launch", json={}))
    assert again["launched"] is False and again["pid"] == first["pid"]
    status = ok(http.get("/browser"))
    assert status["attached"] is True and status["pid"] == first["pid"]
    process = psutil.Process(first["pid"])
    assert "chromium" in process.name()
    # Its window is on our display (Chromium rewrites its own environ, so /proc cannot say).
    wait_until(lambda: first["pid"] in [pid for pid, _ in wmctrl(desktop).values()], what="its window")
    assert f"--user-data-dir={status['profile_dir']}" in process.cmdline()
    assert Path(status["profile_dir"]).parent == state_home / "computer-agent"
    assert Path(status["profile_dir"], "Default").is_dir()  # Chromium itself wrote it there
    assert os.getsid(process.pid) == process.pid  # detached: the leader of its own session


def test_navigate_reads_html_and_title(http: httpx.Client, pages: PageServer, desktop: DevDesktop) -> None:
    done = ok(http.post("/browser/navigate", json={"url": f"{pages.url}/page/alpha"}))
    assert done == {
        "tab_id": done["tab_id"],
        "url": f"{pages.url}/page/alpha",
        "status": 200,
        "title": "alpha",
        "loaded": True,
        "error": None,
    }
    pages.wait_for("alpha", "load")  # the page itself ran and told the server
    wait_for_title(desktop, "alpha")
    page = ok(http.post("/browser/html", json={}))
    assert page["tab_id"] == done["tab_id"] and page["encoding"] == "UTF-8"
    assert page["html"].startswith("<!DOCTYPE html>")
    assert "page alpha marker" in page["html"] and "added by script" in page["html"]  # the live DOM
    assert page["size"] == len(page["html"].encode()) and page["truncated"] is False

    redirected = ok(http.post("/browser/navigate", json={"url": f"{pages.url}/redirect?to=/page/beta"}))
    assert redirected["url"] == f"{pages.url}/page/beta" and redirected["title"] == "beta"
    missing = ok(http.post("/browser/navigate", json={"url": f"{pages.url}/missing"}))
    assert missing["status"] == 404 and missing["title"] == "missing"
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    refused = ok(http.post("/browser/navigate", json={"url": f"http://127.0.0.1:{closed_port}/"}))
    assert refused["error"] == "net::ERR_CONNECTION_REFUSED" and refused["status"] is None


def test_html_options(http: httpx.Client, pages: PageServer) -> None:
    ok(http.post("/browser/navigate", json={"url": f"{pages.url}/page/gamma"}))
    live = ok(http.post("/browser/html", json={}))["html"]
    encoded = ok(http.post("/browser/html", json={"base64": True}))
    assert encoded["base64"] is True and base64.b64decode(encoded["html"]).decode() == live
    sent = ok(http.post("/browser/html", json={"auto_detect_encoding": True}))["html"]
    assert 'id="added"' in live and 'id="added"' not in sent  # as the server sent it, not the DOM
    assert "page gamma marker" in sent
    cut = ok(http.post("/browser/html", json={"max_bytes": 100}))
    assert cut["truncated"] is True and len(cut["html"].encode()) <= 100 and cut["size"] == len(live.encode())

    lone = "data:text/html,<script>document.write('a' + String.fromCharCode(0xd800) + 'b')</script>"
    assert ok(http.post("/browser/navigate", json={"url": lone}))["status"] is None  # no HTTP, no status
    assert "a\ufffdb" in ok(http.post("/browser/html", json={}))["html"]  # a lone surrogate in the DOM

    ok(http.post("/browser/navigate", json={"url": f"{pages.url}/latin1"}))
    latin = ok(http.post("/browser/html", json={"auto_detect_encoding": True}))
    assert latin["encoding"] == "windows-1252" and "café" in latin["html"]


def test_tabs_open_switch_close(http: httpx.Client, pages: PageServer, desktop: DevDesktop) -> None:
    first = ok(http.post("/browser/navigate", json={"url": f"{pages.url}/page/first"}))["tab_id"]
    opened = ok(http.post("/browser/tabs", json={"url": f"{pages.url}/page/second"}))
    second = opened["tab_id"]
    assert opened["title"] == "second" and opened["status"] == 200 and second != first
    pages.wait_for("second", "load")
    wait_for_title(desktop, "second")  # the new tab is in front
    listed = ok(http.get("/browser/tabs"))
    assert [tab["tab_id"] for tab in listed["tabs"]][-2:] == [first, second]
    assert [tab["title"] for tab in listed["tabs"]][-2:] == ["first", "second"]  # the <title>s
    assert listed["current_tab_id"] == second

    switched = ok(http.post(f"/browser/tabs/{first}/switch", json={}))
    assert switched["tab_id"] == first and switched["current"] is True
    wait_for_title(desktop, "first")
    pages.wait_for("second", "hidden")  # the page saw itself go to the background
    assert ok(http.post("/browser/html", json={}))["tab_id"] == first  # actions follow the switch
    html = ok(http.post("/browser/html", json={"tab_id": second}))["html"]
    assert "page second marker" in html

    # The user switches tabs by hand (ctrl+2 through X): actions follow the tab on screen.
    ok(http.post("/desktop/key", json={"key": "ctrl+2"}))
    wait_for_title(desktop, "second")
    assert ok(http.post("/browser/html", json={}))["tab_id"] == second
    assert ok(http.get("/browser/tabs"))["current_tab_id"] == second
    ok(http.post(f"/browser/tabs/{first}/switch", json={}))
    wait_for_title(desktop, "first")

    closed = ok(http.delete(f"/browser/tabs/{second}"))
    assert closed == {"tab_id": second, "current_tab_id": first}
    pages.wait_for("second", "pagehide")
    assert second not in [tab["tab_id"] for tab in ok(http.get("/browser/tabs"))["tabs"]]

    unknown = http.delete(f"/browser/tabs/{second}")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "TAB_NOT_FOUND"
    assert http.post("/browser/tabs/nope/switch", json={}).status_code == 404
    assert http.post("/browser/html", json={"tab_id": "nope"}).status_code == 404
    for tab in ok(http.get("/browser/tabs"))["tabs"]:
        if tab["tab_id"] != first:
            ok(http.delete(f"/browser/tabs/{tab['tab_id']}"))
    last = http.delete(f"/browser/tabs/{first}")
    assert last.status_code == 409 and last.json()["error"]["code"] == "LAST_TAB"


def test_viewport_changes_the_page_and_context_matches(
    http: httpx.Client, pages: PageServer, desktop: DevDesktop
) -> None:
    ok(http.post("/browser/navigate", json={"url": f"{pages.url}/page/delta"}))
    context = ok(http.post("/browser/viewport", json={"width": 640, "height": 480}))
    reported = pages.wait_for("delta", "resize", width="640", height="480")
    assert (context["viewport_width"], context["viewport_height"]) == (640, 480)
    assert context["device_scale_factor"] == 1 and reported["width"] == "640"

    # Any action asked for context carries the tab as the page itself and the window show it.
    answer = ok(http.post("/actions", json={"type": "list_windows", "include_context": True}))
    page = answer["result"]["page_context"]
    assert answer["page_context"] == page and answer["executed_tab_id"] == page["tab_id"]  # seed 002's place
    assert page["url"] == f"{pages.url}/page/delta" and page["title"] == "delta"
    assert page["tab_id"] == ok(http.get("/browser/tabs"))["current_tab_id"]
    assert (page["viewport_width"], page["viewport_height"]) == (640, 480)
    assert page["page_height"] > 3000 and page["scroll_y"] == 0
    assert "delta - Chromium" in [window["title"] for window in answer["result"]["windows"]]
    rest = ok(
        http.post(
            "/browser/viewport",
            json={"width": 800, "height": 600, "scale_factor": 2, "include_context": True},
        )
    )
    pages.wait_for("delta", "resize", width="800")
    assert rest["device_scale_factor"] == 2 and rest["page_context"]["viewport_width"] == 800
    no_context = ok(http.post("/actions", json={"type": "list_windows"}))
    assert "page_context" not in no_context["result"] and "page_context" not in no_context
    assert "executed_tab_id" not in no_context


def test_batch_mixes_browser_and_desktop_actions(http: httpx.Client, pages: PageServer) -> None:
    tab = ok(http.post("/browser/tabs", json={"url": f"{pages.url}/page/button"}))["tab_id"]
    try:
        batch = ok(
            http.post(
                "/batch",
                json={
                    "actions": [
                        {"type": "go_to_url", "url": f"{pages.url}/page/clickme"},
                        {"type": "get_html_content"},
                        {"type": "click", "x": 640, "y": 500, "include_context": True},
                        {"type": "list_tabs"},
                    ]
                },
            )
        )
        results = [step["result"] for step in batch["results"]]
        assert results[0]["title"] == "clickme" and "press clickme" in results[1]["html"]
        assert results[2]["page_context"]["url"] == f"{pages.url}/page/clickme"
        assert batch["results"][2]["page_context"] == results[2]["page_context"]
        assert batch["results"][0]["executed_tab_id"] == tab == batch["results"][2]["executed_tab_id"]
        # The click went through X to the page: its button's handler fetched the server.
        pages.wait_for("clickme", "clicked")
        assert results[3]["current_tab_id"] == tab
    finally:
        ok(http.delete(f"/browser/tabs/{tab}"))


def test_desktop_click_reaches_the_page(http: httpx.Client, pages: PageServer, desktop: DevDesktop) -> None:
    tab = ok(http.post("/browser/tabs", json={"url": f"{pages.url}/page/pressme"}))["tab_id"]
    try:
        wait_for_title(desktop, "pressme")
        ok(http.post("/desktop/click", json={"x": 640, "y": 450}))
        pages.wait_for("pressme", "clicked")
    finally:
        ok(http.delete(f"/browser/tabs/{tab}"))


def test_bad_input(http: httpx.Client) -> None:
    for url, status, code in [
        ("javascript:alert(1)", 403, "URL_SCHEME_NOT_ALLOWED"),
        ("file:///etc/passwd", 403, "URL_SCHEME_NOT_ALLOWED"),
        ("chrome://settings", 403, "URL_SCHEME_NOT_ALLOWED"),
        ("example.com", 400, "INVALID_ARGUMENT"),
        ("ftp://example.com/", 400, "INVALID_ARGUMENT"),
    ]:
        for route in ("/browser/navigate", "/browser/tabs"):
            answer = http.post(route, json={"url": url})
            assert answer.status_code == status, (route, url, answer.text)
            assert answer.json()["error"]["code"] == code
    assert http.post("/browser/viewport", json={"width": 0, "height": 10}).status_code == 400
    assert http.post("/browser/proxy", json={"proxy_url": "ftp://x:1"}).status_code == 400
    assert http.post("/browser/proxy", json={"proxy_url": "http://u:p@127.0.0.1:3128"}).status_code == 400


def test_the_debugging_channel_has_no_socket(http: httpx.Client, pages: PageServer) -> None:
    """With --remote-debugging-pipe there is nothing to reach, from the network or a page."""
    pid = ok(http.post("/browser/launch", json={}))["pid"]
    browser = psutil.Process(pid)
    family = [browser, *browser.children(recursive=True)]
    command = browser.cmdline()
    assert "--remote-debugging-pipe" in command
    assert not any(arg.startswith("--remote-debugging-port") for arg in command)
    pids = {member.pid for member in family}
    listening = [
        (member.pid, connection.laddr)
        for member in family
        for connection in member.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN or not connection.raddr
    ]
    assert listening == []
    ss = subprocess.run(["ss", "-ltnupH"], capture_output=True, text=True, check=True).stdout
    assert not [line for line in ss.splitlines() if any(f"pid={p}," in line for p in pids)]
    ok(http.post("/browser/navigate", json={"url": f"{pages.url}/probe"}))
    probed = pages.wait_for("probe", "probed")
    assert json.loads(probed["results"]) == ["refused", "refused", "refused"]


def test_proxy_applies_and_clears(http: httpx.Client, pages: PageServer) -> None:
    before = ok(http.post("/browser/launch", json={}))["pid"]
    changed = ok(http.post("/browser/proxy", json={"proxy_url": pages.url}))
    assert changed == {"proxy_url": pages.url, "relaunched": True, "attached": True}
    assert ok(http.get("/browser"))["pid"] != before
    assert f"--proxy-server={pages.url}" in psutil.Process(ok(http.get("/browser"))["pid"]).cmdline()
    same = ok(http.post("/browser/proxy", json={"proxy_url": pages.url}))
    assert same["relaunched"] is False
    done = ok(http.post("/browser/navigate", json={"url": "http://proxied.test/page/proxied"}))
    assert done["title"] == "proxied" and done["status"] == 200
    assert "http://proxied.test/page/proxied" in pages.requests  # absolute form: asked of a proxy

    cleared = ok(http.post("/browser/proxy", json={"proxy_url": None}))
    assert cleared == {"proxy_url": None, "relaunched": True, "attached": True}
    direct = ok(http.post("/browser/navigate", json={"url": "http://proxied.test/page/direct"}))
    assert direct["error"] is not None and "http://proxied.test/page/direct" not in pages.requests


def test_a_killed_browser_is_reported_then_relaunched(
    http: httpx.Client, pages: PageServer, desktop: DevDesktop
) -> None:
    pid = ok(http.post("/browser/launch", json={}))["pid"]
    os.kill(pid, signal.SIGKILL)
    status = wait_until(
        lambda: (s := ok(http.get("/browser")))["last_exit"] and s, timeout=15, what="the exit to be noticed"
    )
    assert status["attached"] is False and "SIGKILL" in status["last_exit"]
    gone = http.post("/browser/navigate", json={"url": f"{pages.url}/page/after"})
    assert gone.status_code == 503 and gone.json()["error"]["code"] == "BROWSER_CLOSED"
    assert "SIGKILL" in gone.json()["error"]["message"] and gone.headers["Retry-After"] == "1"
    again = ok(http.post("/browser/navigate", json={"url": f"{pages.url}/page/after"}))
    assert again["title"] == "after"
    pages.wait_for("after", "load")
    wait_for_title(desktop, "after")
    fresh = ok(http.get("/browser"))
    assert fresh["attached"] is True and fresh["pid"] != pid and psutil.pid_exists(fresh["pid"])
    # Nothing pushes the page down after the crash (no warning bar for --no-sandbox as root): the
    # window's height less the page's is the tab strip and toolbar alone (~86 px, a bar adds 57).
    window = next(w for w, (owner, _) in wmctrl(desktop).items() if owner == fresh["pid"])
    geometry = subprocess.run(
        ["xwininfo", "-id", hex(window)], env=desktop.env, capture_output=True, text=True, check=True
    )
    window_height = int(next(line for line in geometry.stdout.splitlines() if "Height:" in line).split()[-1])
    context = ok(http.post("/actions", json={"type": "list_tabs", "include_context": True}))["result"][
        "page_context"
    ]
    assert window_height - context["viewport_height"] < 120, (window_height, context)

    # The user closing the window is an exit too.
    window = next(w for w, (owner, _) in wmctrl(desktop).items() if owner == fresh["pid"])
    subprocess.run(["wmctrl", "-ic", hex(window)], env=desktop.env, check=True)
    wait_until(lambda: ok(http.get("/browser"))["last_exit"], timeout=15, what="the close to be noticed")
    closed = http.post("/browser/html", json={})
    assert closed.status_code == 503 and "closed" in closed.json()["error"]["message"]
    assert ok(http.post("/browser/navigate", json={"url": "about:blank"}))["loaded"] is True


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the desktop user needs root")
def test_runs_as_the_desktop_user_and_unsafe_urls_by_option(desktop: DevDesktop, tmp_path: Path) -> None:
    env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)
    running = start_agent(
        env,
        tmp_path,
        "--display",
        desktop.display,
        "--desktop-user",
        "nobody",
        "--browser-allow-unsafe-urls",
        "true",
    )
    try:
        with running.client() as client:
            launched = ok(client.post("/browser/launch", json={}))
            assert psutil.Process(launched["pid"]).username() == "nobody"
            assert Path(launched["profile_dir"]).stat().st_uid == psutil.Process(launched["pid"]).uids().real
            ok(client.post("/browser/navigate", json={"url": "file:///etc/hostname"}))
            html = ok(client.post("/browser/html", json={}))["html"]
            assert Path("/etc/hostname").read_text().strip() in html
            script = ok(
                client.post("/browser/navigate", json={"url": "javascript:void(document.title='ran')"})
            )
            assert script["title"] == "ran" and script["error"] is None
    finally:
        running.stop()


def test_the_browser_capability_switch(desktop: DevDesktop, tmp_path: Path) -> None:
    env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)
    running = start_agent(env, tmp_path, "--display", desktop.display, "--browser", "false")
    try:
        with running.client() as client:
            for answer in (
                client.get("/browser"),
                client.post("/browser/navigate", json={"url": "about:blank"}),
                client.post("/actions", json={"type": "go_to_url", "url": "about:blank"}),
            ):
                assert answer.status_code == 403 and answer.json()["error"]["code"] == "BROWSER_DISABLED"
            plain = ok(client.post("/actions", json={"type": "list_windows", "include_context": True}))
            assert plain["result"]["page_context"] is None
    finally:
        running.stop()


@pytest.fixture()
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A TCP listener that accepts connections and never answers (a hung web server)."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", held
    stop.set()
    thread.join(5)
    for connection in held:
        connection.close()
    listener.close()


def test_navigation_honours_its_timeout_when_the_server_never_answers(
    http: httpx.Client, pages: PageServer, silent_server: tuple[str, list[socket.socket]]
) -> None:
    import threading

    silent, held = silent_server
    ok(http.post("/browser/navigate", json={"url": f"{pages.url}/page/before"}))
    # The client's own timeout is the bound: the agent must answer long before it.
    done = ok(http.post("/browser/navigate", json={"url": f"{silent}/never", "timeout": 2}, timeout=15))
    assert done["loaded"] is False and done["status"] is None
    opened = ok(http.post("/browser/tabs", json={"url": f"{silent}/never2", "timeout": 2}, timeout=15))
    assert opened["loaded"] is False
    ok(http.delete(f"/browser/tabs/{opened['tab_id']}", timeout=15))

    # Other calls are not held behind a navigation still waiting for its server.
    answers: list[httpx.Response] = []
    pending = threading.Thread(
        target=lambda: answers.append(
            http.post("/browser/navigate", json={"url": f"{silent}/slow", "timeout": 8}, timeout=30)
        )
    )
    connections = len(held)
    pending.start()
    try:
        wait_until(
            lambda: len(held) > connections, timeout=5, what="the browser to connect to the silent server"
        )
        # Chromium holds every command to the page until its server answers: said so, promptly.
        page = http.post("/browser/html", json={}, timeout=6)
        assert page.status_code == 504 and "has not answered" in page.json()["error"]["message"]
        listed = ok(http.get("/browser/tabs", timeout=6))
        assert listed["current_tab_id"] == done["tab_id"]
        clicked = ok(http.post("/desktop/click", json={"x": 5, "y": 5, "include_context": True}, timeout=6))
        assert clicked["page_context"] is None
    finally:
        pending.join(30)
    assert ok(answers[0])["loaded"] is False
    after = ok(http.post("/browser/navigate", json={"url": f"{pages.url}/page/after-hang"}, timeout=15))
    assert after["loaded"] is True and after["title"] == "after-hang"


def renderers(browser_pid: int) -> list[psutil.Process]:
    family = psutil.Process(browser_pid).children(recursive=True)
    return [
        p for p in family if "--type=renderer" in p.cmdline() and "--extension-process" not in p.cmdline()
    ]


def test_a_crashed_tab_is_reported_promptly_and_recovers(http: httpx.Client, pages: PageServer) -> None:
    pid = ok(http.post("/browser/launch", json={}))["pid"]
    tab = ok(http.post("/browser/navigate", json={"url": f"{pages.url}/page/doomed"}))["tab_id"]
    for renderer in renderers(pid):  # "Aw, Snap!": the page's process dies, the browser lives
        renderer.kill()
    # Reported as a crash well within the 10 s cap (the client's timeout is the bound), every time.
    for _ in range(2):
        crashed = http.post("/browser/html", json={}, timeout=8)
        assert crashed.status_code == 409, crashed.text
        assert "crashed" in crashed.json()["error"]["message"]
        assert crashed.json()["error"]["details"]["tab_id"] == tab
    clicked = ok(http.post("/desktop/click", json={"x": 5, "y": 5, "include_context": True}, timeout=8))
    assert clicked["page_context"] is None
    assert ok(http.get("/browser"))["pid"] == pid  # the browser itself is alive
    # Navigating the crashed tab reloads it in a new renderer.
    again = ok(
        http.post("/browser/navigate", json={"url": f"{pages.url}/page/revived", "timeout": 10}, timeout=15)
    )
    assert again["tab_id"] == tab and again["loaded"] is True and again["title"] == "revived"
    pages.wait_for("revived", "load")
    assert "page revived marker" in ok(http.post("/browser/html", json={}, timeout=8))["html"]
