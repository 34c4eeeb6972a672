"""JSON-lines logging with the request id of the request being served.

Under systemd the agent's stdout is a journal stream; journald reads a ``<N>`` syslog priority
prefix at the start of each line (``SyslogLevelPrefix=``, on by default), so each line starts
with its level's priority there and ``journalctl -p warning`` finds warnings and errors.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import TextIO

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class JSONFormatter(logging.Formatter):
    """One JSON object a line. Every request writes one (the access line): the text of the
    current second is kept rather than formatted again for every line."""

    _second = -1
    _second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        entry: dict[str, object] = {
            "ts": f"{self._second_text}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# syslog(3) priorities of the logging levels (journald's PRIORITY= field).
SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def syslog_priority(levelno: int) -> int:
    """The priority of a level; custom levels take the priority of the next standard one below."""
    for level, priority in sorted(SYSLOG_PRIORITY.items(), reverse=True):
        if levelno >= level:
            return priority
    return 7


class JournalFormatter(JSONFormatter):
    """The JSON line behind the ``<N>`` prefix journald turns into the entry's priority."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{syslog_priority(record.levelno)}>{super().format(record)}"


def writes_to_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is the journal stream systemd named in ``$JOURNAL_STREAM`` (dev:inode).

    Compared by device and inode, as sd_journal_stream_fd(3) says, so a redirected stdout (a
    file, a pipe to another program) never gets the prefixes.
    """
    env = os.environ if environ is None else environ
    device, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    try:
        info = os.fstat(stream.fileno())
        return (info.st_dev, info.st_ino) == (int(device), int(inode))
    except (ValueError, OSError):
        return False


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JournalFormatter() if writes_to_journal(sys.stdout) else JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log is replaced by ours (agent.api.middleware).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
