"""The model's coordinate space: the fit of a screen in it, and the mapping of marked fields."""

from __future__ import annotations

import pytest

from agent.actions.registry import load_all
from agent.actions.space import to_screen, to_space
from agent.desktop.keys import parse_keys, resolve
from agent.desktop.space import CoordinateSpace, SpaceError
from agent.errors import InvalidArgument
from agent.models.compat import AnthropicComputerInput
from agent.models.desktop import ClickRequest, DragRequest, Position, RegionScreenshotRequest
from agent.models.windows import FrameExtents, Window, WindowList

# The operation modules in their declared order (importing one first would reorder the document).
load_all()
XGA_ON_720P = CoordinateSpace(1024, 768).fit(1280, 720)


def test_the_issue_example_maps_pixel_to_pixel() -> None:
    fit = XGA_ON_720P
    assert (fit.picture_width, fit.picture_height, fit.left, fit.top) == (1024, 576, 0, 96)
    assert (fit.to_screen("x", 512), fit.to_screen("y", 384)) == (640, 360)
    assert (fit.to_space("x", 640), fit.to_space("y", 360)) == (512, 384)


@pytest.mark.parametrize(
    ("space", "screen"),
    [
        ((1024, 768), (1280, 720)),
        ((1280, 800), (1920, 1080)),
        ((800, 600), (1280, 1024)),
        ((1920, 1080), (1280, 720)),
    ],
)
def test_every_model_pixel_round_trips(space: tuple[int, int], screen: tuple[int, int]) -> None:
    fit = CoordinateSpace(*space).fit(*screen)
    for axis, offset, picture in (("x", fit.left, fit.picture_width), ("y", fit.top, fit.picture_height)):
        for value in range(offset, offset + picture):
            on_screen = fit.to_screen(axis, value)  # type: ignore[arg-type]
            limit = screen[0] if axis == "x" else screen[1]
            assert 0 <= on_screen < limit
            if picture <= limit:  # downscaled: every model pixel shows a screen pixel it came from
                assert fit.to_space(axis, on_screen) == value  # type: ignore[arg-type]


def test_letterbox_and_outside_are_refused() -> None:
    with pytest.raises(SpaceError, match="letterbox"):
        XGA_ON_720P.to_screen("y", 50)
    with pytest.raises(SpaceError, match="outside the 1024x768"):
        XGA_ON_720P.to_screen("x", 1024)
    with pytest.raises(SpaceError, match="outside"):
        XGA_ON_720P.to_screen("y", -1)


@pytest.mark.parametrize("text", ["1024", "x768", "1024x", "0x768", "1024x99999", "ten by six", "-5x5"])
def test_malformed_spaces(text: str) -> None:
    with pytest.raises(SpaceError):
        CoordinateSpace.parse(text)


def test_requests_map_to_the_screen_and_name_the_bad_field() -> None:
    click = to_screen(ClickRequest(x=512, y=384), XGA_ON_720P)
    assert (click.x, click.y) == (640, 360)
    assert to_screen(ClickRequest(), XGA_ON_720P).x is None  # "at the pointer" stays so
    drag = to_screen(DragRequest(start_x=0, start_y=96, end_x=1023, end_y=671), XGA_ON_720P)
    assert (drag.start_x, drag.start_y, drag.end_x, drag.end_y) == (0, 0, 1279, 719)
    region = to_screen(RegionScreenshotRequest(x=0, y=96, width=512, height=288), XGA_ON_720P)
    assert (region.x, region.y, region.width, region.height) == (0, 0, 640, 360)
    with pytest.raises(InvalidArgument, match="end_y: 700 is in the letterbox padding"):
        to_screen(DragRequest(start_x=0, start_y=100, end_x=10, end_y=700), XGA_ON_720P)


def test_answers_map_back_however_nested() -> None:
    from agent.actions.accessibility import AccessibleNode, FindResult
    from agent.models.accessibility import Center, FoundNode

    assert to_space(Position(x=640, y=360), XGA_ON_720P) == Position(x=512, y=384)
    frame = FrameExtents(left=0, right=0, top=20, bottom=0)
    window = Window.model_validate(
        dict(
            id="0x1",
            title="t",
            wm_class="C",
            instance="i",
            x=640,
            y=360,
            width=320,
            height=180,
            frame=frame,
            pid=1,
            focused=True,
            minimized=False,
            maximized=False,
            desktop=0,
        )
    )
    [mapped] = to_space(WindowList(windows=[window]), XGA_ON_720P).windows
    assert (mapped.x, mapped.y, mapped.width, mapped.height) == (512, 384, 256, 144)
    assert mapped.wm_class == "C"
    found = FoundNode.model_construct(
        id="1",
        role="push button",
        name="OK",
        states=[],
        x=640,
        y=360,
        width=100,
        height=50,
        center=Center(x=690, y=385),
    )
    [node] = to_space(FindResult(nodes=[found]), XGA_ON_720P).nodes
    assert (node.x, node.y, node.width, node.height) == (512, 384, 80, 40)
    assert node.center == Center(x=552, y=404)
    child = AccessibleNode(id="2", role="label", name="x", states=[], x=1279, y=719, width=1, height=1)
    tree = AccessibleNode(id="1", role="frame", name="f", states=[], children=[child])
    [leaf] = to_space(tree, XGA_ON_720P).children
    assert (leaf.x, leaf.y) == (1023, 671)


def test_every_openai_key_name_resolves_to_an_x_key() -> None:
    from agent.actions.compat_openai import OPENAI_KEYS, key_names

    for name, keysym_name in OPENAI_KEYS.items():
        assert resolve(keysym_name).keysym, name
        assert key_names([name]) == [keysym_name]
        assert key_names([name.lower()]) == [keysym_name]  # the case models happen to use
    assert key_names(["CTRL", "SHIFT", "T"]) == ["Control_L", "Shift_L", "t"]
    assert key_names(["CTRL", "A"]) == ["Control_L", "a"]
    assert key_names(["/", "1", ","]) == ["/", "1", ","]
    parse_keys(key_names(["/", ";", "["]))
    with pytest.raises(InvalidArgument, match="'HYPERSPACE', 'F99'"):
        key_names(["CTRL", "HYPERSPACE", "F99"])


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"action": "fly"}, "action: unknown action 'fly'"),
        ({"action": "mouse_move"}, "coordinate: required"),
        ({"action": "key"}, "text: required"),
        ({"action": "scroll", "scroll_direction": "up"}, "scroll_amount: required"),
        ({"action": "screenshot", "coordinate": [1, 2]}, "coordinate: not accepted"),
        ({"action": "type", "text": "a", "duration": 1}, "duration: not accepted"),
    ],
)
def test_anthropic_input_checks_name_the_field(payload: dict[str, object], named: str) -> None:
    from agent.actions.compat_anthropic import check_fields

    with pytest.raises(InvalidArgument, match=named):
        check_fields(AnthropicComputerInput.model_validate(payload))
