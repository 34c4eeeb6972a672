"""docs/api.md is the served contract: every route of the OpenAPI document with an example, and
exactly what `make docs` writes now."""

from __future__ import annotations

import shlex

from agent.api.openapi import build_document
from agent.codegen import docs
from tests.unit.conftest import Api


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


async def test_the_mcp_curl_example_works_as_pasted(api: Api) -> None:
    """The /mcp example's headers and body, sent as curl sends them, call a tool (not a 202)."""
    section = docs.DOC_FILE.read_text().split("### `POST /mcp`", 1)[1].split("\n### ", 1)[0]
    command = shlex.split(section.split("```sh\n", 1)[1].split("\n```", 1)[0])
    headers = dict(command[i + 1].split(": ", 1) for i, word in enumerate(command) if word == "-H")
    headers = {name: value for name, value in headers.items() if name != "Authorization"}  # the fixture's
    body = command[command.index("--json") + 1]
    answer = await api.post("/mcp", data=body, headers={**headers, "Content-Type": "application/json"})
    assert answer.status == 200, await answer.text()
    message = await answer.json()
    assert message["id"] == 1 and message["result"]["isError"] is False, message
    assert message["result"]["structuredContent"].keys() == {"width", "height"}
