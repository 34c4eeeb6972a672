"""Schemathesis hooks for the run with exec and files enabled (SCHEMATHESIS_HOOKS names this module).

* ``application/x-ndjson``: every line of a stream is validated against the event schema the
  document gives for the operation (schemathesis knows only one JSON document per answer).
* Background processes get a deadline when the generated request has none, so a generated
  command that waits cannot keep a followed output stream open past the run's request timeout
  (the agent's --exec-max-timeout caps the others). A generated command line first runs ``cat``
  (until its stdin closes or the deadline), so that the process is still running when stdin
  and signals reach it: generated commands mostly fail at once, leaving only 409s to check.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import schemathesis

PROCESS_DEADLINE = 5.0


def _event_validator(operation: Any, status: int) -> Any:
    document = operation.schema.raw_schema
    responses = document["paths"][operation.path][operation.method.lower()]["responses"]
    schema = responses[str(status)]["content"]["application/x-ndjson"]["schema"]
    return jsonschema_rs.validator_for({**schema, "components": document["components"]})


@schemathesis.deserializer("application/x-ndjson")
def ndjson(ctx: schemathesis.DeserializationContext, response: Any) -> Any:
    lines = [line for line in response.content.decode("utf-8").split("\n") if line]
    if not lines:
        raise NotImplementedError  # an empty stream: nothing to validate
    validator = _event_validator(ctx.operation, response.status_code)
    events = [json.loads(line) for line in lines]
    for index, event in enumerate(events):
        errors = [error.message for error in validator.iter_errors(event)]
        if errors:
            raise ValueError(f"event #{index} {event!r} violates the event schema: {'; '.join(errors)}")
    return events[-1]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    operation = case.operation
    if operation.method.upper() == "POST" and operation.path == "/processes" and isinstance(case.body, dict):
        # Only valid values are replaced (by valid ones): a negative case stays negative.
        timeout = case.body.get("timeout_seconds")
        number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if timeout is None or (number and timeout > PROCESS_DEADLINE):
            case.body["timeout_seconds"] = PROCESS_DEADLINE
        command = case.body.get("command")
        if isinstance(command, str) and command:
            case.body["command"] = f"cat; {command}"
