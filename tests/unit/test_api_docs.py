"""docs/api.md is the served contract: every route of the OpenAPI document with an example, and
exactly what `make docs` writes now."""

from __future__ import annotations

from agent.api.openapi import build_document
from agent.codegen import docs


def test_api_md_is_current() -> None:
    assert docs.DOC_FILE.read_text() == docs.render(), "docs/api.md is stale: run `make docs`"


def test_every_route_has_its_section_and_an_example() -> None:
    text = docs.DOC_FILE.read_text()
    for path, methods in build_document()["paths"].items():
        for method in methods:
            heading = f"### `{method.upper()} {path}`"
            assert heading in text, heading
            section = text.split(heading, 1)[1].split("\n### ", 1)[0]
            assert "```sh\ncurl " in section and "Answer `" in section, heading
