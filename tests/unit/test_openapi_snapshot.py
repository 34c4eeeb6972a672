"""The served OpenAPI document equals the committed snapshot (regenerate with `make openapi`)."""

from __future__ import annotations

import json
from pathlib import Path

from agent.api.openapi import build_document

SNAPSHOT = Path(__file__).resolve().parent.parent / "snapshots" / "openapi.json"


def test_openapi_matches_snapshot() -> None:
    document = json.loads(json.dumps(build_document()))
    committed = json.loads(SNAPSHOT.read_text())
    assert document == committed, (
        "the API changed: run `make openapi` and commit tests/snapshots/openapi.json"
    )
