"""Journal priorities: a line journald reads carries its level's syslog priority."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from agent.supervision.logs import JournalFormatter, JSONFormatter, syslog_priority, writes_to_journal


def _record(level: int) -> logging.LogRecord:
    return logging.LogRecord("agent.test", level, __file__, 1, "hello %s", ("world",), None)


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        (logging.DEBUG, 7),
        (logging.INFO, 6),
        (logging.WARNING, 4),
        (logging.ERROR, 3),
        (logging.CRITICAL, 2),
        (25, 6),
    ],
)
def test_levels_map_to_syslog_priorities(level: int, priority: int) -> None:
    record = _record(level)
    line = JournalFormatter().format(record)
    assert line.startswith(f"<{priority}>{{")
    assert line.removeprefix(f"<{priority}>") == JSONFormatter().format(record)
    assert syslog_priority(level) == priority


def test_only_the_stream_journal_stream_names_gets_prefixes(tmp_path: Path) -> None:
    """A socket whose dev:inode is in $JOURNAL_STREAM is the journal; a file or another socket is not."""
    left, right = socket.socketpair()
    other = (tmp_path / "log").open("w")
    try:
        info = os.fstat(left.fileno())
        env = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        with os.fdopen(os.dup(left.fileno()), "w") as stream:
            assert writes_to_journal(stream, env)
            assert not writes_to_journal(stream, {})
            assert not writes_to_journal(stream, {"JOURNAL_STREAM": "garbage"})
        assert not writes_to_journal(other, env)
        with os.fdopen(os.dup(right.fileno()), "w") as stream:
            assert not writes_to_journal(stream, env)
    finally:
        left.close()
        right.close()
        other.close()
