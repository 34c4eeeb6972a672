"""Command output as bytes: bounded capture, UTF-8-safe chunking and the text/base64 choice.

Output is kept as bytes end to end and decoded only when it is put into JSON, so output that is
not UTF-8 (a binary, a latin-1 file) comes back intact as base64 instead of being mangled by
``errors="replace"``. Caps are enforced while reading, so ``yes`` running for minutes costs no
more memory than its cap.
"""

from __future__ import annotations

import base64
from typing import Literal

Encoding = Literal["utf-8", "base64"]


def incomplete_tail(data: bytes | bytearray) -> int:
    """How many bytes at the end of ``data`` start a UTF-8 sequence that is not complete yet.

    Chunks from a pipe split multi-byte characters at arbitrary places; holding those bytes back
    lets every chunk decode on its own.
    """
    size = len(data)
    for back in range(1, min(4, size) + 1):
        byte = data[size - back]
        if byte & 0xC0 == 0x80:  # continuation byte: keep looking for the lead byte
            continue
        if byte < 0x80:
            return 0
        if byte & 0xE0 == 0xC0:
            needed = 2
        elif byte & 0xF0 == 0xE0:
            needed = 3
        elif byte & 0xF8 == 0xF0:
            needed = 4
        else:
            return 0  # not a lead byte: the data is not UTF-8 anyway
        return back if needed > back else 0
    return 0


def encode(data: bytes) -> tuple[str, Encoding]:
    """``data`` as JSON-safe text: itself when it is UTF-8, else base64."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def decode_input(text: str, encoding: Encoding) -> bytes:
    """Bytes a caller sent as text (``utf-8``) or as ``base64``; bad base64 is a ValueError."""
    if encoding == "base64":
        return base64.b64decode(text, validate=True)
    return text.encode("utf-8")


class Utf8Aligner:
    """Re-cuts a stream of chunks so that no chunk ends inside a UTF-8 character."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> bytes:
        if self._tail:
            data = self._tail + data
        cut = incomplete_tail(data)
        if cut:
            self._tail = data[-cut:]
            return data[:-cut]
        self._tail = b""
        return data

    def flush(self) -> bytes:
        tail, self._tail = self._tail, b""
        return tail


class Capture:
    """Keeps the first ``limit`` bytes of a stream, counts the rest and drops it.

    ``close()`` turns it into a pure counter: used when a command's leftover background children
    still hold the pipe after the answer was sent.
    """

    __slots__ = ("_buf", "closed", "limit", "total", "truncated")

    def __init__(self, limit: int | None) -> None:
        self._buf = bytearray()
        self.limit = limit
        self.total = 0
        self.truncated = False
        self.closed = False

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if self.closed:
            return
        if self.limit is None:
            self._buf += data
            return
        room = self.limit - len(self._buf)
        if len(data) > room:
            if room > 0:
                self._buf += data[:room]
            self.truncated = True
        else:
            self._buf += data

    def close(self) -> None:
        self.closed = True
        self._buf = bytearray()

    def value(self) -> bytes:
        data = bytes(self._buf)
        if self.truncated:
            # The cap may have cut a character in two: drop the half so the rest stays text.
            cut = incomplete_tail(data)
            if cut:
                data = data[:-cut]
        return data
