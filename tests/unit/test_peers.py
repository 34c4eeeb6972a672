"""The peers' vocabularies in the registry and the document (effects: tests/x11/test_peer_vocabularies.py)."""

from __future__ import annotations

import pytest

from agent.actions.peers import ALIASES, COMPUTER_ACTION, PEER_EXECUTE
from agent.actions.registry import load_all
from agent.api.openapi import build_document
from agent.models.peers import PIXELS_PER_NOTCH, ScrollPixelsRequest, pixels_to_notches


@pytest.mark.parametrize(
    ("pixels", "notches"),
    [(0, 0), (1, 1), (49, 1), (100, 1), (149, 1), (150, 2), (300, 3), (-120, -1), (-250, -3), (20000, 200)],
)
def test_pixels_become_the_nearest_notch_and_at_least_one(pixels: int, notches: int) -> None:
    assert PIXELS_PER_NOTCH == 100
    assert pixels_to_notches(pixels) == notches


def test_direction_and_amount_in_pixels() -> None:
    assert ScrollPixelsRequest(direction="left", amount=250).notches() == (-3, 0)
    assert ScrollPixelsRequest(dy=120).notches() == (0, 1)


def test_every_alias_and_peer_type_is_in_the_document() -> None:
    registry = load_all()
    schemas = build_document()["components"]["schemas"]
    actions = schemas["Action"]["discriminator"]["mapping"]
    for alias, target in ALIASES.items():
        assert alias in actions and registry.get(alias).handler is registry.get(target).handler
    for type_name in ("click_mouse", "move_mouse", "drag_mouse", "press_keys", "scroll_pixels"):
        assert type_name in actions
    for vocabulary, schema in ((COMPUTER_ACTION, "ComputerAction"), (PEER_EXECUTE, "ExecuteAction")):
        mapping = schemas[schema]["discriminator"]["mapping"]
        assert set(mapping) == set(vocabulary.members)
        for name in mapping:
            member = schemas[mapping[name].rsplit("/", 1)[1]]
            assert member["properties"]["type"]["const"] == name
