"""Every operation is declared once: the served routes, the registry and the OpenAPI document
agree; query booleans mean the same on every route; switched-off capabilities hold everywhere.

The capability and query tests run against a real ``computer-agent serve`` and check effects on
disk and in /proc, not only the status the agent reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.actions.capabilities import Capability
from agent.actions.registry import Operation, load_all
from agent.api.app import create_app
from agent.api.openapi import build_document
from agent.config import Config
from agent.services import Services
from tests.conftest import RunningAgent, start_agent
from tests.displays import unused_display
from tests.fakes import FakeDesktop
from tests.unit.test_exec import agent_env
from tests.waiting import wait_until

GATED = [op for op in load_all() if op.capability is not None or op.conditional is not None]


def test_every_served_route_is_declared_and_documented(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    token.chmod(0o600)
    config = Config(token_file=token, display=":fake")
    app = create_app(config, Services(config=config, desktop=FakeDesktop()))
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    documented = {(method, path) for path, item in build_document()["paths"].items() for method in item}
    assert served == documented, (served - documented, documented - served)
    declared = {(op.method.lower(), op.route) for op in load_all() if op.route is not None}
    assert declared | {("post", "/actions"), ("post", "/batch"), ("post", "/mcp")} == served
    assert len(served) >= 59


def _route(operation: Operation) -> str:
    assert operation.route is not None
    return re.sub(r"{\w+}", "x", operation.route)


@pytest.fixture(scope="module")
def switched_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    """An agent with --exec false, --accessibility false and --browser false."""
    running = start_agent(
        agent_env(),
        tmp_path_factory.mktemp("off-agent"),
        "--display",
        unused_display(),
        "--exec",
        "false",
        "--accessibility",
        "false",
        "--browser",
        "false",
    )
    yield running
    running.stop()


def _expected(operation: Operation) -> tuple[int, str]:
    """Every switched-off capability: 403 <CAPABILITY>_DISABLED (accessibility was a 503 before)."""
    capability = operation.capability or (operation.conditional and operation.conditional.capability)
    assert isinstance(capability, Capability)
    return 403, f"{capability.value.upper()}_DISABLED"


def _body(operation: Operation) -> dict[str, Any]:
    return dict(operation.conditional.example) if operation.conditional is not None else {}


def _refused(answer: httpx.Response, operation: Operation) -> None:
    status, code = _expected(operation)
    assert answer.status_code == status, (operation.type, answer.text)
    assert answer.json()["error"]["code"] == code, (operation.type, answer.text)
    # Permanent: nothing to retry; and marked as the agent's own error for a proxy in front.
    assert "Retry-After" not in answer.headers, (operation.type, answer.headers)
    assert answer.headers["X-Computer-Agent-Error"] == code


@pytest.mark.parametrize("operation", [op for op in GATED if op.route], ids=lambda op: op.type)
def test_switched_off_capability_refuses_the_route(switched_off: RunningAgent, operation: Operation) -> None:
    body = _body(operation)
    with switched_off.client() as http:
        if operation.from_query:
            answer = http.request(operation.method, _route(operation), params=body, content=b"x" * 10)
        else:
            answer = http.request(operation.method, _route(operation), json=body)
    _refused(answer, operation)


@pytest.mark.parametrize("operation", GATED, ids=lambda op: op.type)
def test_switched_off_capability_refuses_the_action_and_the_batch(
    switched_off: RunningAgent, operation: Operation
) -> None:
    action = {"type": operation.type, **_body(operation)}
    with switched_off.client() as http:
        _refused(http.post("/actions", json=action), operation)
        # The whole batch is refused before its first step runs.
        answer = http.post("/batch", json={"actions": [{"type": "wait", "ms": 0}, action]})
        _refused(answer, operation)
        assert answer.json()["error"]["details"]["index"] == 1


def test_refusals_are_counted_in_the_metrics(switched_off: RunningAgent) -> None:
    """A refusal is an outcome of the operation like any error (it was missing from /metrics)."""
    with switched_off.client() as http:
        http.post("/exec", json={"command": "true"})
        http.post("/actions", json={"type": "files_list", "path": "/tmp"})
        http.post("/actions", json={"type": "no_such_type"})
        metrics = http.get("/metrics").text
    assert 'computer_agent_actions_total{result="EXEC_DISABLED",type="exec"}' in metrics
    assert 'computer_agent_actions_total{result="FILES_DISABLED",type="files_list"}' in metrics
    assert 'type="no_such_type"' not in metrics


def test_switched_off_exec_and_files_touch_nothing(switched_off: RunningAgent, tmp_path: Path) -> None:
    """Seen on disk: nothing written, created, moved or run; and no existence oracle."""
    kept = tmp_path / "kept.txt"
    kept.write_text("kept")
    marker = tmp_path / "ran"
    with switched_off.client() as http:
        http.put("/files", params={"path": str(tmp_path / "new.txt")}, content=b"x")
        http.post("/files/mkdir", json={"path": str(tmp_path / "folder")})
        http.post("/files/move", json={"source": str(kept), "destination": str(tmp_path / "moved")})
        http.delete("/files", params={"path": str(kept)})
        http.post("/actions", json={"type": "files_delete", "path": str(kept)})
        http.post("/processes", json={"command": f"touch {marker}"})
        http.post("/batch", json={"actions": [{"type": "exec", "command": f"touch {marker}"}]})
        missing = http.post("/desktop/wallpaper", json={"url": f"file://{tmp_path}/missing.png"})
        present = http.post("/desktop/wallpaper", json={"url": f"file://{kept}"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
    assert kept.read_text() == "kept"
    assert (missing.status_code, present.status_code) == (403, 403)  # not 404 and 400: nothing was read


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(agent_env(), tmp_path_factory.mktemp("query-agent"), "--display", unused_display())
    yield running
    running.stop()


@pytest.mark.parametrize(("word", "meaning"), [("off", False), ("No", False), ("0", False), ("on", True)])
def test_recursive_flag_reads_the_one_vocabulary(
    agent: RunningAgent, tmp_path: Path, word: str, meaning: bool
) -> None:
    folder = tmp_path / "full"
    folder.mkdir()
    (folder / "inside.txt").write_text("x")
    with agent.client() as http:
        answer = http.delete("/files", params={"path": str(folder), "recursive": word})
    assert answer.status_code == (200 if meaning else 409), answer.text
    assert folder.exists() is not meaning


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("word", ["off", "false", "0", "no", "OFF"])
def test_follow_off_returns_what_is_there_without_waiting(agent: RunningAgent, word: str) -> None:
    with agent.client() as http:
        info = http.post("/processes", json={"command": "echo ready; sleep 60"}).json()
        try:
            wait_until(
                lambda: http.get(f"/processes/{info['id']}").json()["stdout_bytes"] > 0,
                timeout=10,
                what="the process to write",
            )
            # Followed, this would stream until the process exits in 60 s: the client gives up at 20.
            answer = http.get(f"/processes/{info['id']}/output", params={"follow": word}, timeout=20)
            assert answer.status_code == 200, answer.text
            assert [line for line in answer.text.splitlines() if line] == [
                '{"type":"stdout","data":"ready\\n","encoding":"utf-8","offset":0}'
            ]
            assert _running(info["pid"])  # the reader left; the process runs on
        finally:
            http.post(f"/processes/{info['id']}/signal", json={"signal": "KILL"})


@pytest.mark.parametrize(
    "where", [("DELETE", "/files", "recursive"), ("GET", "/processes/{id}/output", "follow")], ids=str
)
@pytest.mark.parametrize("word", ["maybe", "", "2", "truee"])
def test_any_other_boolean_is_a_400_naming_the_parameter(
    agent: RunningAgent, tmp_path: Path, where: tuple[str, str, str], word: str
) -> None:
    method, route, name = where
    target = tmp_path / "keep"
    target.mkdir()
    with agent.client() as http:
        info = http.post("/processes", json={"command": "sleep 60"}).json()
        try:
            url = route.replace("{id}", info["id"])
            params = {name: word, **({"path": str(target)} if route == "/files" else {})}
            answer = http.request(method, url, params=params)
        finally:
            http.post(f"/processes/{info['id']}/signal", json={"signal": "KILL"})
    assert answer.status_code == 400, answer.text
    assert name in answer.json()["error"]["message"]
    assert target.exists()


def test_path_parameters_come_from_the_path(agent: RunningAgent) -> None:
    """The REST body's schema leaves them out; a body that contradicts the path is refused."""
    with agent.client() as http:
        answer = http.post("/processes/nope/signal", json={"id": "other", "signal": "TERM"})
        assert answer.status_code == 400 and "id" in answer.json()["error"]["message"], answer.text
        assert http.post("/processes/nope/signal", json={"id": "nope"}).status_code == 404
    body = build_document()["components"]["schemas"]["SignalRequestBody"]
    assert "id" not in body["properties"]


@pytest.mark.parametrize("operation", [op for op in load_all() if not op.actions], ids=lambda op: op.type)
def test_rest_only_operations_name_their_route_through_actions(
    agent: RunningAgent, operation: Operation
) -> None:
    with agent.client() as http:
        answer = http.post("/actions", json={"type": operation.type})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"]["route"] == operation.route
    assert "REST only" in answer.json()["error"]["message"]


def test_a_body_of_whitespace_is_not_an_empty_object(agent: RunningAgent) -> None:
    """No body at all means {}; whitespace is invalid JSON (schemathesis sent "\\r\\n": 200)."""
    with agent.client() as http:
        answer = http.post(
            "/processes/nope/signal", content=b"\r\n", headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400 and "JSON" in answer.json()["error"]["message"], answer.text
        assert (
            http.post("/processes/nope/signal", headers={"Content-Type": "application/json"}).status_code
            == 404
        )
