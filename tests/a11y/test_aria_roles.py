"""Accessibility for callers who do not speak AT-SPI, against real GTK apps on the test desktop.

``app=`` roots the tree at the application, ARIA / Playwright role names find what the AT-SPI
names they stand for find, nodes carry the ARIA name beside the AT-SPI one, and bounds are left
out (never null) where the toolkit knows none. Observers: pyatspi in its own process (the
reference AT-SPI client), xdotool for the screen's size, and the agent's served OpenAPI document
(validated with jsonschema-rs, not with the models that produced the answers).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import jsonschema_rs

from agent.session.devdesktop import DevDesktop
from tests.a11y.test_accessibility import Launch, bounds, find, launch, walk
from tests.conftest import run_observer

__all__ = ["launch"]  # the fixture, shared with test_accessibility

LOG = logging.getLogger(__name__)
TREE = "/desktop/accessibility-tree"
FIND = "/desktop/accessibility/find"
# ARIA name -> the AT-SPI names it stands for in GTK 3's widgets (as Chromium maps them).
ARIA_NAMES = {
    "button": ("push button", "toggle button", "push button menu"),
    "checkbox": ("check box",),
    "radio": ("radio button",),
    "textbox": ("text", "entry", "password text", "editbar"),
    "slider": ("slider",),
    "menuitem": ("menu item", "tearoff menu item"),
    "combobox": ("combo box", "autocomplete"),
    "scrollbar": ("scroll bar",),
    "separator": ("separator",),
    "progressbar": ("progress bar",),
    "spinbutton": ("spin button",),
    "menu": ("menu", "popup menu"),
    "menubar": ("menu bar",),
    "window": ("frame", "window"),
    "switch": ("toggle button",),  # AT-SPI 2.46 has no switch role; GtkSwitch is a toggle button
}
INT_MIN = -(2**31)


def pyatspi_app(desktop: DevDesktop, pid: int) -> dict[str, Any]:
    """The application's root as pyatspi sees it, and the extents GTK gives each of its nodes."""
    script = f"""
import json, pyatspi
nodes = []
def walk(acc):
    try:
        e = acc.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
        box = [e.x, e.y, e.width, e.height]
    except NotImplementedError:
        box = None
    nodes.append([acc.getRoleName(), acc.name, box])
    for child in acc:
        if child is not None:
            walk(child)
for app in pyatspi.Registry.getDesktop(0):
    if app.get_process_id() == {pid}:
        walk(app)
        print(json.dumps({{"role": app.getRoleName(), "name": app.name, "nodes": nodes}}))
"""
    return json.loads(run_observer(desktop, "/usr/bin/python3", "-c", script, timeout=60))  # type: ignore[no-any-return]


def validator(client: httpx.Client, route: str) -> Any:
    """A validator for the 200 answer of ``route`` in the agent's served OpenAPI document."""
    document = client.get("/openapi.json").json()
    schema = document["paths"][route]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})


def assert_valid(check: Any, answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    errors = [error.message for error in check.iter_errors(body)]
    assert not errors, errors[:5]
    return body


def test_app_roots_the_tree_at_the_application(
    client: httpx.Client, desktop: DevDesktop, launch: Launch
) -> None:
    zenity = launch("zenity", "--question", "--text", "Rooted?")
    assert find(client, role="push button", name="Yes", app=str(zenity.pid))
    theirs = pyatspi_app(desktop, zenity.pid)
    check = validator(client, TREE)
    for app in (str(zenity.pid), "zenity", "ZENITY"):  # pid, name, any case
        tree = assert_valid(check, client.get(TREE, params={"app": app}))["tree"]
        assert (tree["role"], tree["aria_role"], tree["pid"]) == ("application", "application", zenity.pid)
        assert tree["name"] == theirs["name"] == "zenity" and theirs["role"] == "application"
        assert any(n["name"] == "Yes" for n in walk(tree))
    # The format=text outline starts at the application too.
    text = client.get(TREE, params={"app": str(zenity.pid), "format": "text"}).json()["text"]
    assert text.startswith('application "zenity"'), text
    # Without app= the root is the desktop, and its bounds are the screen's.
    whole = assert_valid(check, client.get(TREE, params={"max_depth": 1}))["tree"]
    screen = run_observer(desktop, "xdotool", "getdisplaygeometry").split()
    assert whole["role"] == "desktop frame" and "aria_role" not in whole
    assert bounds(whole) == (0, 0, int(screen[0]), int(screen[1]))
    assert zenity.pid in {child["pid"] for child in whole["children"]}


def test_aria_role_names_find_what_the_atspi_names_find(client: httpx.Client, launch: Launch) -> None:
    factory = launch("gtk3-widget-factory")
    app = str(factory.pid)
    assert find(client, role="radio button", name="Page 3", app=app)
    check = validator(client, FIND)

    def ids(role: str) -> dict[str, dict[str, Any]]:
        answer = client.get(FIND, params={"role": role, "app": app, "max_results": "10000"})
        return {node["id"]: node for node in assert_valid(check, answer)["nodes"]}

    for aria, atspi_names in ARIA_NAMES.items():
        found = ids(aria)
        expected: dict[str, dict[str, Any]] = {}
        for name in atspi_names:
            expected |= ids(name)
        assert found.keys() == expected.keys(), aria
        assert {node["role"] for node in found.values()} <= set(atspi_names), aria
        if aria != "switch":  # a stand-in: GtkSwitch's node says button, its AT-SPI role's name
            assert {node.get("aria_role") for node in found.values()} <= {aria}, aria
    for aria in ("button", "checkbox", "radio", "textbox", "slider", "menuitem", "combobox", "tab"):
        assert ids(aria), f"the widget factory has a {aria}"
    # /actions takes the same names and leaves unknown bounds out the same way.
    action = client.post(
        "/actions", json={"type": "accessibility_find", "role": "button", "app": app, "max_results": 10000}
    )
    assert action.status_code == 200, action.text
    assert {node["id"] for node in action.json()["result"]["nodes"]} == ids("button").keys()
    assert "null" not in json.dumps(action.json()["result"]["nodes"])
    # Any case, and AT-SPI names with underscores, still work.
    assert ids("Button").keys() == ids("button").keys()
    assert ids("push_button").keys() == ids("PUSH BUTTON").keys() <= ids("button").keys()
    # The tree's role filter takes the same names.
    aria_tree = client.get(TREE, params={"app": app, "roles": "button,checkbox"}).json()
    atspi_tree = client.get(
        TREE, params={"app": app, "roles": "push button,toggle button,push button menu,check box"}
    ).json()
    assert {n["id"] for n in walk(aria_tree["tree"])} == {n["id"] for n in walk(atspi_tree["tree"])}
    assert aria_tree["node_count"] == atspi_tree["node_count"] > 10
    # The served document publishes the vocabulary beside the filter, as this test uses it.
    parameters = client.get("/openapi.json").json()["paths"][FIND]["get"]["parameters"]
    [role] = [parameter for parameter in parameters if parameter["name"] == "role"]
    published = role["schema"]["x-aria-roles"]
    assert {aria: tuple(published[aria]) for aria in ARIA_NAMES} == {
        aria: tuple(sorted(names)) for aria, names in ARIA_NAMES.items()
    }


def test_nodes_carry_their_aria_role_and_never_null_bounds(
    client: httpx.Client, desktop: DevDesktop, launch: Launch
) -> None:
    factory = launch("gtk3-widget-factory")
    assert find(client, role="radio button", name="Page 3", app=str(factory.pid))
    answer = client.get(TREE, params={"app": str(factory.pid)})
    body = assert_valid(validator(client, TREE), answer)
    assert '"x":null' not in answer.text and '"width":null' not in answer.text
    nodes = list(walk(body["tree"]))
    expected = {
        "push button": "button",
        "toggle button": "button",
        "check box": "checkbox",
        "radio button": "radio",
        "text": "textbox",
        "menu item": "menuitem",
        "page tab": "tab",
        "combo box": "combobox",
        "application": "application",
        "frame": "window",
    }
    seen = set()
    for node in nodes:
        if node["role"] in expected:
            assert node["aria_role"] == expected[node["role"]], node
            seen.add(node["role"])
        if node["role"] in ("label", "scroll pane", "viewport", "accelerator label"):
            assert "aria_role" not in node, node  # no ARIA equivalent: left out
    assert {"push button", "check box", "radio button", "text", "application", "frame"} <= seen

    # Bounds are left out only where GTK knows none: pyatspi asks every node for its extents,
    # and GTK answers its "nowhere" (INT_MIN) for every node we leave without bounds.
    without = [node for node in nodes if bounds(node) is None]
    LOG.warning("%d of %d nodes have no bounds", len(without), len(nodes))
    nowhere: dict[tuple[str, str], int] = {}
    theirs = pyatspi_app(desktop, factory.pid)
    for role, name, box in theirs["nodes"]:
        if box is None or box[0] == INT_MIN:
            nowhere[role, name] = nowhere.get((role, name), 0) + 1
    for node in without:
        if node["role"] == "application":
            continue  # not a thing on screen: AT-SPI applications have no Component interface
        assert "showing" not in node["states"], node
        assert nowhere.get((node["role"], node["name"]), 0) > 0, node
    showing = [n for n in nodes if "showing" in n["states"] and n["role"] != "application"]
    assert showing and all(bounds(n) is not None for n in showing)
