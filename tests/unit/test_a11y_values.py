"""Accessibility values without a bus: state bits, ids, role filtering, the text outline, and
the 503 when no accessibility bus can be reached."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from dbus_fast import Variant
from dbus_fast._private.unmarshaller import Unmarshaller  # the independent decoder

from agent.a11y import outline, roles
from agent.a11y.cache import CacheIndex
from agent.a11y.encode import encode_call
from agent.a11y.node import DESKTOP_ID, Node, Ref, ScreenRect, TreeResult, WalkOptions, keep_roles
from agent.a11y.service import Accessibility
from agent.actions.registry import load_all
from agent.errors import AccessibilityUnavailable, NotFound


def node(path: str, role: str, name: str = "", depth: int = 2, *states: str) -> Node:
    words = [0, 0]
    for number in roles.parse_state_names(list(states)):
        words[number // 32] |= 1 << (number % 32)
    return Node(
        Ref(":1.7", path), roles.ROLE_NUMBERS[role], name, "", tuple(words), frozenset(), 0, depth=depth
    )


def test_cache_items_are_found_by_path_and_by_parent_in_index_order() -> None:
    """GetItems structs (as dbus-fast gives them) by name; a parent's cached children only when
    the cache has exactly its child count, with indexes 0..n-1."""

    def item(path: str, parent: str, index: int, child_count: int = 0) -> list[object]:
        return [
            [":1.7", path],
            [":1.7", "/root"],
            [":1.7", parent],
            index,
            child_count,
            [],
            path,
            43,
            "",
            [0, 0],
        ]

    cache = CacheIndex(
        [item("/b", "/p", 1), item("/a", "/p", 0), item("/p", "/root", 0, 2), item("/x", "/q", -1)]
    )
    assert len(cache) == 4 and cache.by_path["/p"].child_count == 2 and cache.by_path["/a"].name == "/a"
    assert [child.path for child in cache.children_of("/p", 2) or []] == ["/a", "/b"]
    assert cache.children_of("/p", 3) is None  # the toolkit knows more children than it cached
    assert cache.children_of("/q", 1) is None  # an index the toolkit does not know (-1)
    assert cache.children_of("/p", -1) is None  # a child count the toolkit does not know (menus)


def test_found_nodes_read_the_walks_node() -> None:
    """/find's answer is filled from the Node's attributes; without a position the bounds are left
    out, not null, and the ARIA role stands beside the AT-SPI one."""
    load_all()  # the actions register in their documented order before one module is imported alone
    from agent.models.accessibility import FoundNode

    button = node("/org/a11y/atspi/accessible/5", "push button", "OK", 2, "showing")
    assert FoundNode.model_validate(button).model_dump() == {
        "id": "1.7:5",
        "role": "push button",
        "aria_role": "button",
        "name": "OK",
        "states": ["showing"],
    }
    button.extents = ScreenRect(10, 20, 31, 41)
    placed = FoundNode.model_validate(button).model_dump()
    assert (placed["x"], placed["y"], placed["width"], placed["height"]) == (10, 20, 31, 41)
    assert placed["center"] == {"x": 25, "y": 40}


def test_state_bits_decode_to_libatspi_names() -> None:
    # Bits as GTK sends them for a focused, showing push button: two 32-bit words.
    words = (1 << 8) | (1 << 11) | (1 << 12) | (1 << 24) | (1 << 25) | (1 << 30), 1 << (39 - 32)
    assert roles.state_names(words) == [
        "enabled", "focusable", "focused", "sensitive", "showing", "visible", "is-default",
    ]  # fmt: skip
    assert roles.has_state(words, roles.STATE_NUMBERS["is-default"])
    assert roles.parse_state_names(["multi line", "has_tooltip", "read-only"]) == [17, 13, 43]
    with pytest.raises(KeyError):
        roles.parse_state_names(["shiny"])
    assert roles.role_name(43) == "push button" and roles.role_name(10_000) == "unknown"


def test_ids_round_trip_and_garbage_is_not_found() -> None:
    ref = Ref(":1.13", "/org/a11y/atspi/accessible/61")
    assert ref.id == "1.13:61" and Ref.parse(ref.id) == ref
    odd = Ref(":1.2", "/com/example/Widget/3")
    assert Ref.parse(odd.id) == odd
    for bad in ("", "61", "x:61", ":61", "1.13:"):
        with pytest.raises(NotFound):
            Ref.parse(bad)


def test_role_filter_lifts_matching_descendants() -> None:
    desktop = node(DESKTOP_ID, "desktop frame", "main", 0)
    desktop.ref = Ref("", DESKTOP_ID)
    app = node("/org/a11y/atspi/accessible/root", "application", "zenity", 1)
    frame = node("/org/a11y/atspi/accessible/1", "frame", "Question", 2)
    panel = node("/org/a11y/atspi/accessible/2", "panel", "", 3)
    yes = node("/org/a11y/atspi/accessible/3", "push button", "Yes", 4)
    label = node("/org/a11y/atspi/accessible/4", "label", "Proceed?", 4)
    desktop.children, app.children, frame.children, panel.children = [app], [frame], [panel], [yes, label]
    assert keep_roles(desktop, frozenset({roles.ROLE_NUMBERS["push button"]})) == 3
    assert [child.name for child in app.children] == ["Yes"]


def test_outline_is_compact_and_says_when_cut() -> None:
    desktop = node("d", "desktop frame", "main", 0)
    app = node("/org/a11y/atspi/accessible/root", "application", "zenity", 1)
    app.pid = 42
    panel = node("/org/a11y/atspi/accessible/2", "panel", "", 2, "enabled", "showing", "visible")
    yes = node("/org/a11y/atspi/accessible/3", "push button", 'Say "yes"', 3, "enabled", "focused", "showing")
    yes.extents = ScreenRect(10, 20, 80, 30)
    yes.actions = ("click",)
    desktop.children, app.children, panel.children = [app], [panel], [yes]
    text = outline.render(TreeResult(desktop, truncated=True, node_count=4, elapsed_ms=1.5))
    lines = text.splitlines()
    assert lines[1] == '  application "zenity" [1.7:root] pid=42'
    # The unnamed panel is skipped and its child pulled up; quiet states are left out.
    assert lines[2] == '    push button "Say \\"yes\\"" [1.7:3] @10,20 80x30 {focused} actions=click'
    assert "TRUNCATED" in lines[-1]


def test_extents_centre_and_clip() -> None:
    box = ScreenRect(1200, 700, 200, 100)
    assert box.center == (1300, 750)
    assert box.clip(ScreenRect(0, 0, 1280, 720)) == ScreenRect(1200, 700, 80, 20)
    assert ScreenRect(2000, 0, 5, 5).clip(ScreenRect(0, 0, 1280, 720)) is None


async def test_no_bus_is_503_accessibility_unavailable(tmp_path: Path) -> None:
    service = Accessibility({"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/missing"})
    try:
        with pytest.raises(AccessibilityUnavailable) as caught:
            await service.tree(WalkOptions(timeout=1))
        assert caught.value.status == 503 and caught.value.code == "ACCESSIBILITY_UNAVAILABLE"
        with pytest.raises(AccessibilityUnavailable):
            await service.check()
    finally:
        await service.close()


@pytest.mark.parametrize(
    ("signature", "body"),
    [
        ("", ()),
        ("u", (0,)),
        ("ii", (-5, 7)),
        ("iiu", (640, 360, 0)),
        ("ss", ("org.a11y.atspi.Accessible", "Name ✓")),
        ("ssv", ("org.a11y.atspi.Value", "CurrentValue", Variant("d", 42.5))),
    ],
)
def test_encoded_calls_decode_in_dbus_fast(signature: str, body: tuple[object, ...]) -> None:
    """Our hand-encoded calls read back identically through dbus-fast's own decoder."""
    data = encode_call(
        7,
        destination=":1.42",
        path="/org/a11y/atspi/accessible/61",
        interface="org.a11y.atspi.Component",
        member="GetExtents",
        signature=signature,
        body=body,
    )
    message = Unmarshaller(io.BytesIO(data)).unmarshall()  # type: ignore[arg-type]  # any byte stream
    assert message is not None
    assert message.serial == 7 and message.destination == ":1.42"
    assert message.path == "/org/a11y/atspi/accessible/61"
    assert (message.interface, message.member) == ("org.a11y.atspi.Component", "GetExtents")
    assert message.signature == signature
    assert list(message.body) == list(body)


def test_role_filters_take_aria_and_atspi_names() -> None:
    """One table: every AT-SPI role with an ARIA equivalent, read both ways; names in any case."""
    assert set(roles.ARIA_OF_ATSPI) <= set(roles.ROLE_NAMES)

    def atspi(name: str) -> set[str]:
        return {roles.ROLE_NAMES[number] for number in roles.parse_role(name)}

    assert atspi("button") == {"push button", "toggle button", "push button menu"}
    assert atspi("Push_Button") == atspi("push button") == {"push button"}
    assert atspi("textbox") == {"text", "entry", "password text", "editbar"}
    assert atspi("window") == {"frame", "window"}  # an ARIA and an AT-SPI name: both meanings
    assert atspi("switch") == {"toggle button"}  # no AT-SPI switch role: GtkSwitch's stand-in
    assert roles.aria_role(roles.ROLE_NUMBERS["page tab"]) == "tab"
    assert roles.aria_role(roles.ROLE_NUMBERS["label"]) is None
    assert roles.aria_role(10_000) is None
    with pytest.raises(KeyError):
        roles.parse_role("pushbutton")


def test_the_tree_answer_is_the_documented_node_object_key_for_key() -> None:
    """tree_json builds the answer without models: the same keys, order and values as the
    AccessibleNode model serialises (unknown aria_role and bounds left out, the rest null)."""
    import json

    from agent.actions.accessibility import AccessibilityTree, AccessibleNode, tree_json

    frame = node("/frame", "frame", "Main", 1, "showing", "visible")
    frame.pid = 42
    slider = node("/slider", "slider", "Volume", 2, "showing", "focusable")
    slider.extents = ScreenRect(10, 20, 300, 24)
    slider.value = 3  # an integer from the bus is still a float in the answer
    slider.actions = ("activate",)
    field = node("/text", "text", "Notes", 2, "editable")
    field.text, field.text_truncated = "long é", True
    label = node("/label", "label", "plain", 3)  # no ARIA equivalent, no bounds
    field.children.append(label)
    frame.children += [slider, field]

    data = tree_json(frame)
    as_model = AccessibleNode.model_validate(data).model_dump_json()
    assert json.dumps(data, ensure_ascii=False, separators=(",", ":")) == as_model
    assert "aria_role" not in data["children"][1]["children"][0]
    assert "x" not in data and data["value"] is None
    assert data["children"][0]["value"] == 3.0 and data["children"][0]["width"] == 300
    answer = AccessibilityTree.model_construct(
        tree=data, text=None, truncated=False, node_count=4, elapsed_ms=1.0, unresponsive=[]
    )
    parsed = AccessibilityTree.model_validate_json(answer.model_dump_json())  # as a client reads it
    assert parsed.tree is not None and parsed.tree.children[1].text_truncated is True
