"""The key-name table: every alias, xdotool names, case rules and errors, without an X server."""

from __future__ import annotations

import pytest
from Xlib import XK

from agent.desktop.keys import ALIASES, parse_chord, parse_keys, parse_sequence, resolve, text_keysyms
from agent.errors import InvalidArgument


def keysym(name: str) -> int:
    value = XK.string_to_keysym(name) or XK.string_to_keysym("XF86_" + name.removeprefix("XF86"))
    assert value, name
    return int(value)


@pytest.mark.parametrize(("alias", "target"), sorted(ALIASES.items()))
def test_every_alias_resolves_to_its_keysym_in_any_case(alias: str, target: str) -> None:
    for spelling in (alias, alias.upper(), alias.capitalize()):
        assert resolve(spelling).keysym == keysym(target), spelling


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("ctrl+c", ["Control_L", "c"]),
        ("ctrl+shift+t", ["Control_L", "Shift_L", "t"]),
        ("alt+Tab", ["Alt_L", "Tab"]),
        ("Return", ["Return"]),
        ("KP_Enter", ["KP_Enter"]),
        ("super", ["Super_L"]),
        ("F5", ["F5"]),
        ("f12", ["F12"]),
        ("Page_Up", ["Page_Up"]),
        ("page_down", ["Page_Down"]),
        ("Enter", ["Return"]),
        ("ESC", ["Escape"]),
        ("CTRL+ALT+Delete", ["Control_L", "Alt_L", "Delete"]),
        ("cmd+space", ["Super_L", "space"]),
        ("win+e", ["Super_L", "e"]),
        ("Meta+x", ["Meta_L", "x"]),
        ("PageUp", ["Page_Up"]),
        ("ArrowLeft", ["Left"]),
        ("ctrl++", ["Control_L", "plus"]),
        ("+", ["plus"]),
        ("A", ["A"]),
        ("a", ["a"]),
        ("XF86AudioMute", ["XF86AudioMute"]),
        ("kp_add", ["KP_Add"]),
        ("0x41", ["A"]),
    ],
)
def test_chords(spec: str, names: list[str]) -> None:
    assert [key.keysym for key in parse_chord(spec)] == [keysym(name) for name in names]


def test_case_matters_where_names_differ_only_by_case() -> None:
    assert resolve("a").keysym != resolve("A").keysym
    assert resolve("eacute").keysym == 0xE9 and resolve("Eacute").keysym == 0xC9


def test_single_unicode_characters_are_keys() -> None:
    assert resolve("é").keysym == 0xE9
    assert resolve("€").keysym == 0x10020AC
    assert resolve("日").keysym == 0x1000000 + ord("日")


def test_sequences() -> None:
    assert [[k.name for k in chord] for chord in parse_sequence("ctrl+a Delete")] == [
        ["ctrl", "a"],
        ["Delete"],
    ]
    assert [[k.keysym for k in chord] for chord in parse_sequence(" ")] == [[keysym("space")]]


@pytest.mark.parametrize("spec", ["ctrl+nokey", "hyperspace", "ctrl+", "F99", "ctrl+shift+frob+zork"])
def test_unknown_names_are_named_in_the_error(spec: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_chord(spec)
    assert caught.value.status == 400
    assert (
        any(part in caught.value.message for part in spec.split("+") if part)
        or "empty" in caught.value.message
    )


def test_hotkey_list_names_every_unknown_key() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_keys(["ctrl", "bogus1", "bogus2"])
    assert caught.value.details["unknown_keys"] == ["bogus1", "bogus2"]


def test_text_keysyms() -> None:
    assert text_keysyms("a\r\nb\tc") == [0x61, keysym("Return"), 0x62, keysym("Tab"), 0x63]
    assert text_keysyms("é😀") == [0xE9, 0x1000000 + 0x1F600]
    with pytest.raises(InvalidArgument, match="U\\+0007"):
        text_keysyms("bell\x07")
