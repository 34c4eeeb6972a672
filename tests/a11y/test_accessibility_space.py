"""Accessibility bounds and centres in the caller's coordinate space (X-Coordinate-Space), on
the 1280x720 test desktop seen as 1024x768: a centre found in the space, clicked in the space,
presses the button (zenity's exit code says which)."""

from __future__ import annotations

import math

import httpx

from tests.a11y.test_accessibility import Launch, find, launch  # noqa: F401  (the fixture)

SPACE = {"X-Coordinate-Space": "1024x768"}


def to_model(x: int, y: int) -> tuple[int, int]:
    return math.floor((x + 0.5) * 0.8), math.floor((y + 0.5) * 0.8) + 96


def test_a_centre_found_in_the_space_clicks_the_button(client: httpx.Client, launch: Launch) -> None:  # noqa: F811
    zenity = launch("zenity", "--question", "--text", "Proceed?")
    [yes] = find(client, role="push button", name="Yes", app=str(zenity.pid))
    answer = client.get(
        "/desktop/accessibility/find", params={"role": "push button", "name": "Yes"}, headers=SPACE
    )
    [scaled] = [node for node in answer.json()["nodes"] if node["id"] == yes["id"]]
    assert (scaled["x"], scaled["y"]) == to_model(yes["x"], yes["y"])
    assert (scaled["width"], scaled["height"]) == (round(yes["width"] * 0.8), round(yes["height"] * 0.8))
    assert (scaled["center"]["x"], scaled["center"]["y"]) == to_model(yes["center"]["x"], yes["center"]["y"])
    answer = client.get("/desktop/accessibility-tree", params={"app": str(zenity.pid)}, headers=SPACE)
    assert answer.status_code == 200, answer.text
    tree = answer.json()

    def nodes(node: dict[str, object]) -> list[dict[str, object]]:
        children = node.get("children") or []
        assert isinstance(children, list)
        return [node, *(n for child in children for n in nodes(child))]

    [in_tree] = [node for node in nodes(tree["tree"]) if node["id"] == yes["id"]]
    assert (in_tree["x"], in_tree["y"]) == (scaled["x"], scaled["y"])
    clicked = client.post("/desktop/click", json=scaled["center"], headers=SPACE)
    assert clicked.status_code == 200, clicked.text
    assert zenity.wait(timeout=10) == 0  # "Yes"


def test_element_click_answers_where_it_clicked_in_the_space(client: httpx.Client, launch: Launch) -> None:  # noqa: F811
    zenity = launch("zenity", "--question", "--text", "Proceed?")
    [no] = find(client, role="push button", name="No", app=str(zenity.pid))
    answer = client.post("/desktop/accessibility/click", json={"id": no["id"]}, headers=SPACE)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["x"], answer.json()["y"]) == to_model(no["center"]["x"], no["center"]["y"])
    assert zenity.wait(timeout=10) == 1  # "No"
