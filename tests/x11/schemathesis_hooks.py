"""Schemathesis hooks for tests/x11/test_schemathesis.py: generated bodies never run commands.

/actions and /batch accept every registry action, exec and bash among them; a fuzzer must not
run random command lines on the test machine, so bodies that would are dropped before sending.
The test then checks the agent's own counters that none ran.
"""

from __future__ import annotations

from typing import Any

import schemathesis

COMMAND_TYPES = frozenset({"exec", "bash", "debug"})


def _runs_a_command(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if body.get("type") in COMMAND_TYPES:
        return True
    actions = body.get("actions")
    return isinstance(actions, list) and any(_runs_a_command(action) for action in actions)


@schemathesis.hook
def filter_body(context: Any, body: Any) -> bool:
    return not _runs_a_command(body)
