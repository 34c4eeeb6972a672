"""Encoding AT-SPI method calls straight to D-Bus wire bytes, and writing many at once.

Why: dbus-fast builds a Message, a future and one ``send()`` system call per call; a walk makes
hundreds of calls, and on a peer-to-peer connection each ``send()`` also wakes the application
once. Here the calls of a round are encoded with ``struct`` into one buffer and written with one
``send()``. Replies are still read and decoded by dbus-fast (its compiled decoder is faster than
any Python one), so only the writing side of a connection is ours, and dbus-fast must then never
write on it (``Connection`` routes every call through here when the writer is active).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import struct
from typing import Any

# Body signatures this encoder writes: everything AT-SPI calls of this package send.
ENCODABLE = frozenset({"", "u", "i", "ii", "iiu", "s", "ss", "ssv"})
_HEADER = struct.Struct("<BBBBIII")


def _pad(out: bytearray, align: int) -> None:
    out += b"\0" * (-len(out) % align)


def _string(out: bytearray, text: str) -> None:
    data = text.encode()
    _pad(out, 4)
    out += struct.pack("<I", len(data)) + data + b"\0"


def _value(out: bytearray, kind: str, value: Any) -> None:
    if kind == "s":
        _string(out, value)
    elif kind == "v":  # only numbers are ever sent as variants here (Value.CurrentValue)
        inner = value.signature
        out += bytes((len(inner),)) + inner.encode() + b"\0"
        if inner != "d":
            raise ValueError(f"cannot encode a variant of type {inner!r}")
        _pad(out, 8)
        out += struct.pack("<d", value.value)
    else:
        _pad(out, 4)
        out += struct.pack("<I" if kind == "u" else "<i", value)


def encode_call(
    serial: int,
    *,
    destination: str | None,
    path: str,
    interface: str,
    member: str,
    signature: str,
    body: tuple[Any, ...],
) -> bytes:
    """One little-endian METHOD_CALL message.

    The header fields that repeat from call to call (interface, member, destination,
    signature) are encoded once per kind of call and put first; the object path, which varies,
    goes last (D-Bus does not order header fields), so a call costs two packs and a join.
    """
    fields = _fixed_fields(interface, member, destination, signature)
    encoded_path = path.encode()
    fields += _PATH_FIELD + struct.pack("<I", len(encoded_path)) + encoded_path + b"\0"
    try:
        payload = _body(signature, body) if member in _REPEATED_BODIES else _encode_body(signature, body)
    except TypeError:  # an unhashable argument (a Variant)
        payload = _encode_body(signature, body)
    header = _HEADER.pack(ord("l"), 1, 0, 1, len(payload), serial, len(fields))
    return b"".join((header, fields, b"\0" * (-(16 + len(fields)) % 8), payload))


_PATH_FIELD = bytes((1, 1, ord("o"), 0))


@functools.lru_cache(maxsize=256)
def _fixed_fields(interface: str, member: str, destination: str | None, signature: str) -> bytes:
    if signature not in ENCODABLE:
        raise ValueError(f"cannot encode a call with signature {signature!r}")
    fields = bytearray()
    headers = [(2, "s", interface), (3, "s", member)]
    if destination:
        headers.append((6, "s", destination))
    for code, kind, text in headers:
        _pad(fields, 8)
        fields += bytes((code, 1)) + kind.encode() + b"\0"
        _string(fields, text)
    if signature:
        _pad(fields, 8)
        sig = signature.encode()
        fields += bytes((8, 1, ord("g"), 0, len(sig))) + sig + b"\0"
    _pad(fields, 8)  # the path field that follows starts 8-aligned (fields start at offset 16)
    return bytes(fields)


# Calls whose arguments repeat (coordinate types, interface and property names), so their
# encoded bodies are kept. Never the text of SetTextContents: typed text is not kept around.
_REPEATED_BODIES = frozenset({"GetExtents", "GetAll", "Get", "GetChildren", "GetRole", "GetState"})


@functools.lru_cache(maxsize=256)
def _body(signature: str, body: tuple[Any, ...]) -> bytes:
    return _encode_body(signature, body)


def _encode_body(signature: str, body: tuple[Any, ...]) -> bytes:
    payload = bytearray()
    for kind, value in zip(signature, body, strict=True):
        _value(payload, kind, value)
    return bytes(payload)


class BatchWriter:
    """Queues encoded calls and writes them with as few ``send()`` calls as the socket allows."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self._sock = sock
        self._loop = loop
        self._out = bytearray()
        self._waiting = False
        self.failed: OSError | None = None

    def queue(self, data: bytes) -> None:
        self._out += data

    def flush(self) -> None:
        if self._waiting or not self._out or self.failed is not None:
            return
        try:
            sent = self._sock.send(self._out)
        except BlockingIOError:
            sent = 0
        except OSError as exc:  # dbus-fast's reader sees the same dead socket and finalises
            self.failed = exc
            self._out.clear()
            return
        del self._out[:sent]
        if self._out:  # the socket is full: finish when it drains, never drop the connection
            self._waiting = True
            self._loop.add_writer(self._sock.fileno(), self._writable)

    def _writable(self) -> None:
        self._waiting = False
        with contextlib.suppress(Exception):
            self._loop.remove_writer(self._sock.fileno())
        self.flush()

    def close(self) -> None:
        if self._waiting:
            self._waiting = False
            with contextlib.suppress(Exception):
                self._loop.remove_writer(self._sock.fileno())
        self._out.clear()
