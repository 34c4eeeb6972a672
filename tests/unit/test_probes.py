"""The probes' answers, written without pydantic, are exactly what their declared models write.

``agent.actions.probes`` writes /health and /ready by hand so that monitors never load the
schema machinery; the models in ``agent.models.service`` document those answers (OpenAPI, the
SDK). These tests hold the two together: each answer parses as its model and the model writes
the very same bytes back, for every shape of the readiness state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from agent import __version__
from agent.actions import probes
from agent.desktop.backend import Size
from agent.models.service import Health, ReadinessReport
from agent.supervision.readiness import Check, ReadinessState, Status


@dataclass
class _Readiness:
    state: ReadinessState

    async def current(self) -> ReadinessState:
        return self.state


@dataclass
class _Services:
    readiness: _Readiness


def _services(state: ReadinessState) -> _Services:
    return _Services(_Readiness(state))


STATES = [
    ReadinessState(
        Status.READY,
        (Check("display", True, ":5 1280x720"), Check("accessibility", False, "no bus", required=False)),
        Size(1280, 720),
        0.0,
    ),
    ReadinessState(Status.STARTING, (Check("display", False, 'cannot open :5: "refused" ü'),), None, 0.0),
    ReadinessState(Status.STOPPING, (Check("not_stopping", False, "stopping"),), Size(800, 600), 0.0),
    ReadinessState(Status.DEGRADED, (), None, 0.0),
]


@pytest.mark.parametrize("state", STATES, ids=[s.status.value for s in STATES])
def test_ready_writes_what_its_model_writes(state: ReadinessState) -> None:
    answer = asyncio.run(probes.ready(_services(state)))  # type: ignore[arg-type]
    report = ReadinessReport.model_validate_json(answer.data, strict=True)
    assert report.model_dump_json().encode() == answer.data
    assert report.ready is state.ready and report.status == state.status.value
    assert answer.content_type == "application/json"
    if state.ready:
        assert (answer.status, answer.headers) == (200, None)
    else:
        assert (answer.status, answer.headers) == (503, {"Retry-After": "1"})


def test_health_writes_what_its_model_writes() -> None:
    answer = asyncio.run(probes.health(None))  # type: ignore[arg-type]
    health = Health.model_validate_json(answer.data, strict=True)
    assert health.model_dump_json().encode() == answer.data
    assert (health.status, health.version, answer.status) == ("ok", __version__, 200)
