"""The accessibility routes against real GTK apps on the private test desktop.

Observers: the apps' own exit codes and output (zenity), the X server's window geometry
(xdotool), and pyatspi (the reference AT-SPI client, from Debian) run in its own process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from agent.session.devdesktop import DevDesktop
from tests.conftest import run_observer
from tests.waiting import wait_until

Launch = Callable[..., subprocess.Popen[str]]


@pytest.fixture()
def launch(desktop: DevDesktop) -> Iterator[Launch]:
    """Start GTK apps on the test desktop; every one is ended (by pid) after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(*argv: str, **kwargs: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            argv, env=desktop.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **kwargs
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.communicate(timeout=10)


def find(client: httpx.Client, timeout: float = 15.0, **query: str) -> list[dict[str, Any]]:
    """/find, polled until something matches (apps register with AT-SPI a moment after start)."""

    def placed() -> list[dict[str, Any]] | None:
        answer = client.get("/desktop/accessibility/find", params=query)
        assert answer.status_code in (200, 404), answer.text  # 404: the app is not registered yet
        nodes: list[dict[str, Any]] = answer.json()["nodes"] if answer.status_code == 200 else []
        return nodes if nodes and all("center" in n for n in nodes) else None

    return wait_until(placed, timeout=timeout, what=f"a node on screen matching {query}", interval=0.2)


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node["children"]:
        yield from walk(child)


def bounds(node: dict[str, Any]) -> tuple[int, int, int, int] | None:
    """A node's bounds; None when the answer leaves them out (never null)."""
    if "x" not in node:
        assert not {"y", "width", "height"} & node.keys(), node
        return None
    return node["x"], node["y"], node["width"], node["height"]


def pyatspi_showing(desktop: DevDesktop, pid: int) -> list[list[Any]]:
    """(role, name, [x, y, w, h]) of every showing node of one app, as pyatspi sees it."""
    script = f"""
import json, pyatspi
out = []
def walk(acc):
    states = acc.getState()
    if states.contains(pyatspi.STATE_SHOWING) and acc.name:
        try:
            e = acc.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
            out.append([acc.getRoleName(), acc.name, [e.x, e.y, e.width, e.height]])
        except NotImplementedError:
            pass
    for child in acc:
        if child is not None:
            walk(child)
for app in pyatspi.Registry.getDesktop(0):
    if app.get_process_id() == {pid}:
        walk(app)
print(json.dumps(out))
"""
    return json.loads(run_observer(desktop, "/usr/bin/python3", "-c", script, timeout=60))  # type: ignore[no-any-return]


def test_widget_factory_tree_has_its_widgets_where_pyatspi_and_x_see_them(
    client: httpx.Client, desktop: DevDesktop, launch: Launch
) -> None:
    app = launch("gtk3-widget-factory")
    assert find(client, role="radio button", name="Page 3", app=str(app.pid))
    answer = client.get("/desktop/accessibility-tree", params={"app": "gtk3-widget-factory"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["truncated"] is False and body["unresponsive"] == []
    application = root = body["tree"]  # app= roots the tree at the application
    assert application["role"] == "application" and application["pid"] == app.pid
    nodes = list(walk(root))
    assert body["node_count"] == len(nodes) > 200
    assert len({n["id"] for n in nodes}) == len(nodes)

    # Every named showing widget pyatspi reports is in our tree with the same role and bounds.
    ours = {(n["role"], n["name"], bounds(n)) for n in nodes}
    theirs = pyatspi_showing(desktop, app.pid)
    assert len(theirs) > 40
    missing = [t for t in theirs if (t[0], t[1], tuple(t[2])) not in ours]
    assert not missing, missing[:10]

    # Known widgets lie on screen, inside the app's X window as the X server reports it.
    geometry = run_observer(desktop, "xdotool", "search", "--sync", "--onlyvisible", "--pid", str(app.pid))
    window = geometry.split()[0]
    shell = run_observer(desktop, "xdotool", "getwindowgeometry", "--shell", window)
    geo = dict(line.split("=", 1) for line in shell.split())
    wx, wy, ww, wh = (int(geo[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
    for role, name in [("radio button", "Page 1"), ("label", "Inset"), ("push button", "Sans Regular")]:
        [node] = [n for n in nodes if n["role"] == role and n["name"] == name]
        assert node["x"] >= 0 and node["x"] + node["width"] <= 1280, node
        assert node["y"] >= 0 and node["y"] + node["height"] <= 720, node
        assert wx <= node["x"] < wx + ww and wy <= node["y"] < wy + wh, (node, geo)
    page2 = next(n for n in nodes if n["role"] == "radio button" and n["name"] == "Page 2")
    assert page2["actions"], page2


def test_the_tree_follows_the_app_when_its_page_changes(
    client: httpx.Client, desktop: DevDesktop, launch: Launch
) -> None:
    """Walks after the first send the previous walk's calls ahead: the answer must still be today's."""
    app = launch("gtk3-widget-factory")
    [page2] = find(client, role="radio button", name="Page 2", app=str(app.pid))
    params = {"app": str(app.pid)}
    for _ in range(2):  # the agent now knows which calls page 1 needs
        before = client.get("/desktop/accessibility-tree", params=params).json()
    assert any(n["name"] == "Inset" and "showing" in n["states"] for n in walk(before["tree"]))
    run_observer(
        desktop, "xdotool", "mousemove", str(page2["center"]["x"]), str(page2["center"]["y"]), "click", "1"
    )
    wait_until(  # pyatspi, in its own process, sees page 2 once the switch is done
        lambda: ["label", "Inset"] not in [t[:2] for t in pyatspi_showing(desktop, app.pid)],
        timeout=10,
        what="pyatspi to see page 2",
        interval=0.2,
    )
    theirs = pyatspi_showing(desktop, app.pid)
    after = client.get("/desktop/accessibility-tree", params=params).json()
    assert after["truncated"] is False
    nodes = list(walk(after["tree"]))
    ours = {(n["role"], n["name"], bounds(n)) for n in nodes}
    missing = [t for t in theirs if (t[0], t[1], tuple(t[2])) not in ours]
    assert not missing, missing[:10]
    assert not [n for n in nodes if n["name"] == "Inset" and "showing" in n["states"]]


def test_set_value_moves_a_slider_as_pyatspi_reads_it(
    client: httpx.Client, desktop: DevDesktop, launch: Launch
) -> None:
    app = launch("gtk3-widget-factory")
    sliders = find(client, role="slider", app=str(app.pid), states="showing")
    assert sliders
    slider = sliders[0]
    answer = client.post(
        "/desktop/accessibility/action", json={"id": slider["id"], "action": "set_value", "value": 42}
    )
    assert answer.status_code == 200, answer.text
    script = f"""
import pyatspi
for a in pyatspi.Registry.getDesktop(0):
    if a.get_process_id() == {app.pid}:
        def walk(acc):
            if acc.getRoleName() == "slider" and acc.getState().contains(pyatspi.STATE_SHOWING):
                print(acc.queryValue().currentValue)
            for child in acc:
                if child is not None:
                    walk(child)
        walk(a)
"""
    values = [float(v) for v in run_observer(desktop, "/usr/bin/python3", "-c", script, timeout=60).split()]
    assert 42.0 in values, values
    tree = client.get("/desktop/accessibility-tree", params={"app": str(app.pid)}).json()
    [ours] = [n for n in walk(tree["tree"]) if n["id"] == slider["id"]]
    assert ours["value"] == 42.0


def test_find_then_click_the_centre_through_the_input_backend(client: httpx.Client, launch: Launch) -> None:
    zenity = launch("zenity", "--question", "--text", "Proceed?")
    [yes] = find(client, role="push button", name="Yes", app=str(zenity.pid))
    assert {"id", "role", "name", "states", "x", "y", "width", "height", "center"} <= yes.keys()
    assert "showing" in yes["states"]
    answer = client.post("/desktop/click", json=yes["center"])
    assert answer.status_code == 200, answer.text
    assert zenity.wait(timeout=10) == 0


def test_element_action_click_answers_the_question(client: httpx.Client, launch: Launch) -> None:
    zenity = launch("zenity", "--question", "--text", "Proceed?")
    [yes] = find(client, role="push button", name="Yes", app=str(zenity.pid))
    answer = client.post("/desktop/accessibility/action", json={"id": yes["id"], "action": "click"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True}
    assert zenity.wait(timeout=10) == 0


def test_element_click_route_presses_no(client: httpx.Client, launch: Launch) -> None:
    zenity = launch("zenity", "--question", "--text", "Proceed?")
    [no] = find(client, role="push button", name="No", app=str(zenity.pid))
    answer = client.post("/desktop/accessibility/click", json={"id": no["id"]})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["x"], answer.json()["y"]) == (no["center"]["x"], no["center"]["y"])
    assert zenity.wait(timeout=10) == 1  # zenity's answer for "No"


def window_under(desktop: DevDesktop, point: dict[str, int]) -> int:
    """The window xdotool finds under the pointer at ``point``."""
    shell = run_observer(
        desktop, "xdotool", "mousemove", str(point["x"]), str(point["y"]), "getmouselocation", "--shell"
    )
    return int(dict(line.split("=", 1) for line in shell.split())["WINDOW"])


def cover_with_widget_factory(
    client: httpx.Client, desktop: DevDesktop, launch: Launch, point: dict[str, int]
) -> int:
    """Open gtk3-widget-factory (larger than the screen) over ``point``; its X window."""
    factory = launch("gtk3-widget-factory")
    assert find(client, role="radio button", name="Page 1", app=str(factory.pid))
    window = int(
        run_observer(
            desktop, "xdotool", "search", "--sync", "--onlyvisible", "--pid", str(factory.pid)
        ).split()[0]
    )

    def on_top() -> bool:
        if window_under(desktop, point) == window:
            return True
        run_observer(desktop, "wmctrl", "-i", "-a", hex(window))
        return False

    wait_until(on_top, what="the widget factory to come out on top", interval=0.1)
    return window


def test_element_click_raises_its_window_when_another_covers_it(
    client: httpx.Client, desktop: DevDesktop, launch: Launch
) -> None:
    zenity = launch("zenity", "--question", "--text", "Proceed?", "--title", "Covered question")
    [yes] = find(client, role="push button", name="Yes", app=str(zenity.pid))
    own = int(run_observer(desktop, "xdotool", "search", "--sync", "--name", "Covered question").split()[0])
    cover_with_widget_factory(client, desktop, launch, yes["center"])
    answer = client.post("/desktop/accessibility/click", json={"id": yes["id"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["raised"] == hex(own)
    assert zenity.wait(timeout=10) == 0  # the click reached "Yes", not the window in front


def test_element_click_is_refused_while_another_window_stays_on_top(
    client: httpx.Client, desktop: DevDesktop, launch: Launch
) -> None:
    zenity = launch("zenity", "--question", "--text", "Proceed?")
    [yes] = find(client, role="push button", name="Yes", app=str(zenity.pid))
    cover = cover_with_widget_factory(client, desktop, launch, yes["center"])
    run_observer(desktop, "wmctrl", "-i", "-r", hex(cover), "-b", "add,above")
    answer = client.post("/desktop/accessibility/click", json={"id": yes["id"]})
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "ELEMENT_COVERED" and error["details"]["covered_by"]["window"] == hex(cover)
    assert window_under(desktop, yes["center"]) == cover
    time.sleep(0.3)  # pacing: a click, had one been sent, would have closed zenity by now
    assert zenity.poll() is None  # nothing was clicked: the question is still open


def test_set_text_then_ok_prints_the_text(client: httpx.Client, launch: Launch) -> None:
    zenity = launch("zenity", "--entry", "--text", "Your name?")
    [entry] = find(client, role="text", app=str(zenity.pid), states="editable")
    typed = "Grüße from AT-SPI"
    answer = client.post("/desktop/accessibility/action", json={"id": entry["id"], "action": "set_text"})
    assert answer.status_code == 400 and "needs a value" in answer.json()["error"]["message"]
    answer = client.post(
        "/desktop/accessibility/action", json={"id": entry["id"], "action": "set_text", "value": typed}
    )
    assert answer.status_code == 200, answer.text
    [ok] = find(client, role="push button", name="OK", app=str(zenity.pid))
    assert (
        client.post("/desktop/accessibility/action", json={"id": ok["id"], "action": "press"}).status_code
        == 200
    )
    out, _ = zenity.communicate(timeout=10)
    assert zenity.returncode == 0
    assert out == typed + "\n"


def test_focus_then_return_presses_the_focused_button(client: httpx.Client, launch: Launch) -> None:
    zenity = launch("zenity", "--question", "--text", "Proceed?")
    [no] = find(client, role="push button", name="No", app=str(zenity.pid))
    answer = client.post("/desktop/accessibility/action", json={"id": no["id"], "action": "focus"})
    assert answer.status_code == 200, answer.text
    focused = find(client, role="push button", name="No", app=str(zenity.pid), states="focused")
    assert [n["id"] for n in focused] == [no["id"]]
    assert client.post("/desktop/key", json={"key": "Return"}).status_code == 200
    assert zenity.wait(timeout=10) == 1  # "No" took the key, not the default "Yes"


def test_stale_ids_are_404(client: httpx.Client, launch: Launch) -> None:
    zenity = launch("zenity", "--question", "--text", "Proceed?")
    [yes] = find(client, role="push button", name="Yes", app=str(zenity.pid))
    zenity.kill()
    zenity.wait(timeout=10)
    for route, body in [
        ("/desktop/accessibility/action", {"id": yes["id"], "action": "click"}),
        ("/desktop/accessibility/click", {"id": yes["id"]}),
    ]:
        answer = client.post(route, json=body)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "ELEMENT_NOT_FOUND"
    answer = client.post("/desktop/accessibility/action", json={"id": "nonsense", "action": "click"})
    assert answer.status_code == 404


def test_budget_and_deadline_cut_the_tree_honestly(client: httpx.Client, launch: Launch) -> None:
    app = launch("gtk3-widget-factory")
    assert find(client, role="radio button", name="Page 1", app=str(app.pid))
    small = client.get("/desktop/accessibility-tree", params={"app": str(app.pid), "max_nodes": 25}).json()
    assert small["truncated"] is True
    assert small["node_count"] <= 25 and len(list(walk(small["tree"]))) == small["node_count"]
    shallow = client.get("/desktop/accessibility-tree", params={"app": str(app.pid), "max_depth": 2}).json()
    assert shallow["truncated"] is True
    assert max(len(n["id"]) for n in walk(shallow["tree"])) and all(
        not child["children"] for child in shallow["tree"]["children"]
    )
    for params in ({"max_depth": 0}, {"max_nodes": 1}):  # only the desktop: cut, but nobody hung
        bare = client.get("/desktop/accessibility-tree", params=params).json()
        assert bare["tree"]["children"] == [] and bare["node_count"] == 1, params
        assert bare["truncated"] is True and bare["unresponsive"] == [], params
    started = time.monotonic()
    quick = client.get("/desktop/accessibility-tree", params={"timeout": 0.005}).json()
    assert time.monotonic() - started < 2
    assert quick["truncated"] is True
    for tiny in (5e-324, 1e-9):  # too short even to list the applications: a cut tree, not a 5xx
        cut = client.get("/desktop/accessibility-tree", params={"timeout": tiny})
        assert cut.status_code == 200 and cut.json()["truncated"] is True
        found = client.get("/desktop/accessibility/find", params={"role": "push button", "timeout": tiny})
        assert found.status_code == 200 and found.json()["truncated"] is True


def assert_walked_in_full_once_it_answers(client: httpx.Client, pid: int) -> None:
    body = wait_until(
        lambda: (
            (tree := client.get("/desktop/accessibility-tree", params={"app": str(pid)}).json())
            and not tree["unresponsive"]
            and tree
        ),
        timeout=10,
        what=f"app {pid} to answer a walk",
        interval=0.2,
    )
    assert body["unresponsive"] == [] and body["truncated"] is False
    assert "push button" in {n["role"] for n in walk(body["tree"])}


def test_a_stopped_app_does_not_hang_the_request(client: httpx.Client, launch: Launch) -> None:
    stopped = launch("zenity", "--question", "--text", "Frozen")
    assert find(client, role="push button", name="Yes", app=str(stopped.pid))
    os.kill(stopped.pid, signal.SIGSTOP)
    try:
        took = []
        for _ in range(2):
            started = time.monotonic()
            answer = client.get("/desktop/accessibility-tree", params={"timeout": 1.0})
            took.append(time.monotonic() - started)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["truncated"] is True
            apps = {child["pid"]: child for child in body["tree"]["children"]}
            assert apps[stopped.pid]["id"] in body["unresponsive"]
            assert apps[stopped.pid]["name"] == "zenity"  # named after its process
        assert took[0] < 3.0, took
        assert took[1] < 0.9, took  # still hung: a short leash, not the whole deadline again
    finally:
        os.kill(stopped.pid, signal.SIGCONT)
    # Once it answers again it is walked in full.
    assert_walked_in_full_once_it_answers(client, stopped.pid)


def test_an_app_stopped_before_we_ever_walked_it(client: httpx.Client, launch: Launch) -> None:
    stopped = launch("zenity", "--info", "--text", "Frozen before first contact")
    wait_until(  # registered: listed (by name) in a tree that walks no application
        lambda: (
            client.get(
                "/desktop/accessibility-tree", params={"max_depth": 0, "app": str(stopped.pid)}
            ).status_code
            == 200
        ),
        timeout=15,
        what="zenity to register with AT-SPI",
        interval=0.2,
    )
    os.kill(stopped.pid, signal.SIGSTOP)
    try:
        took = []
        for _ in range(2):
            started = time.monotonic()
            body = client.get(
                "/desktop/accessibility-tree", params={"app": str(stopped.pid), "timeout": 1}
            ).json()
            took.append(time.monotonic() - started)
            assert body["truncated"] is True and len(body["unresponsive"]) == 1
        assert took[0] < 3.0 and took[1] < 0.9, took
    finally:
        os.kill(stopped.pid, signal.SIGCONT)
    assert_walked_in_full_once_it_answers(client, stopped.pid)


def test_text_outline_and_role_filter(client: httpx.Client, launch: Launch) -> None:
    zenity = launch("zenity", "--question", "--text", "Proceed?")
    assert find(client, role="push button", name="Yes", app=str(zenity.pid))
    text = client.get("/desktop/accessibility-tree", params={"app": str(zenity.pid), "format": "text"}).json()
    assert text["tree"] is None
    assert 'push button "Yes"' in text["text"] and 'push button "No"' in text["text"]
    buttons = client.get(
        "/desktop/accessibility-tree", params={"app": str(zenity.pid), "roles": "push button"}
    ).json()
    below_apps = list(walk(buttons["tree"]))[1:]
    assert {n["role"] for n in below_apps} == {"push button"}
    assert {"Yes", "No"} <= {n["name"] for n in below_apps}


def test_window_filter_and_visible_only(client: httpx.Client, desktop: DevDesktop, launch: Launch) -> None:
    zenity = launch("zenity", "--question", "--text", "Proceed?", "--title", "A11y window test")
    assert find(client, role="push button", name="Yes", app=str(zenity.pid))
    window = run_observer(desktop, "xdotool", "search", "--sync", "--name", "A11y window test").split()[0]
    body = client.get(
        "/desktop/accessibility-tree", params={"window": hex(int(window)), "visible_only": "true"}
    ).json()
    application = body["tree"]
    assert application["pid"] == zenity.pid
    assert [w["name"] for w in application["children"]] == ["A11y window test"]
    assert body["node_count"] == len(list(walk(body["tree"])))
    for node in walk(application["children"][0]):
        assert "showing" in node["states"], node
        assert "x" not in node or 0 <= node["x"] < 1280
    # An element id as the window: the tree is that element's subtree.
    frame = application["children"][0]
    sub = client.get("/desktop/accessibility-tree", params={"window": frame["id"]}).json()
    root = sub["tree"]
    assert root["id"] == frame["id"] and root["name"] == "A11y window test"
    assert {n["id"] for n in walk(root)} >= {n["id"] for n in walk(frame)}


def test_unknown_role_and_state_are_400(client: httpx.Client) -> None:
    answer = client.get("/desktop/accessibility/find", params={"role": "pushbutton"})
    assert answer.status_code == 400 and "pushbutton" in answer.json()["error"]["message"]
    answer = client.get("/desktop/accessibility/find", params={"states": "shiny"})
    assert answer.status_code == 400
