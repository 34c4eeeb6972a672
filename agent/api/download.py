"""Sending a ``Download``: Range (206/416), sendfile, and files whose size is not their content.

Downloads go out with ``sendfile`` from the descriptor the desktop user's file thread opened,
so the kernel copies the bytes. A download sends exactly what it declares: files of pseudo
filesystems (/proc, /sys), whose sizes are not their content, are read to their end and sent
chunked; a file that shrinks while it is sent ends the connection, so a keep-alive client never
reads the next answer as the rest of this one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from email.utils import formatdate

from aiohttp import web

from agent.actions.outputs import Download
from agent.api.middleware import REQUEST_ID_HEADER, error_response
from agent.errors import InvalidArgument
from agent.supervision.logs import REQUEST_ID

STREAM_CHUNK = 1 << 16  # bytes read per step from a file of unknown size
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

LOG = logging.getLogger(__name__)


class RangeNotSatisfiableError(Exception):
    pass


def _byte_position(digits: str) -> int:
    """A Range number; one longer than any file size could be is just "past every end"
    (Python refuses to convert more than 4,300 digits, and no file has 2**63 bytes)."""
    return int(digits) if len(digits) <= 18 else 1 << 63


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` for one satisfiable byte range; None to send everything.

    Several ranges, or a header we do not understand, get the whole file (RFC 9110 allows it);
    a range that starts past the end raises ``RangeNotSatisfiableError``.
    """
    if not header:
        return None
    match = RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        count = _byte_position(last)
        if count == 0:
            raise RangeNotSatisfiableError
        return max(0, size - count), size
    start = _byte_position(first)
    end = size if not last else min(size, _byte_position(last) + 1)
    if start >= size or end <= start:
        raise RangeNotSatisfiableError
    return start, end


def _drop_connection(request: web.Request) -> None:
    """End the connection after what was sent: the response cannot be completed as declared,
    and a keep-alive client must see it end rather than read the next answer as its rest."""
    if request.protocol is not None:
        request.protocol.force_close()


async def send_download(request: web.Request, opened: Download) -> web.StreamResponse:
    try:
        if not opened.size_known:
            return await _stream_to_end(request, opened)
        try:
            span = parse_range(opened.range, opened.size)
        except RangeNotSatisfiableError:
            refusal = error_response(
                InvalidArgument(f"the range is outside the file's {opened.size} bytes"),
                REQUEST_ID.get() or "",
            )
            refusal.set_status(416)
            refusal.headers["Content-Range"] = f"bytes */{opened.size}"
            return refusal
        start, end = span if span is not None else (0, opened.size)
        response = web.StreamResponse(status=206 if span is not None else 200)
        response.content_type = "application/octet-stream"
        response.content_length = end - start
        response.headers["Accept-Ranges"] = "bytes"
        response.headers["Last-Modified"] = formatdate(opened.mtime, usegmt=True)
        response.headers["ETag"] = f'"{opened.inode:x}-{opened.size:x}-{int(opened.mtime * 1e6):x}"'
        response.headers[REQUEST_ID_HEADER] = REQUEST_ID.get() or ""
        if span is not None:
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{opened.size}"
        await response.prepare(request)
        if end > start and request.method != "HEAD":  # sendfile bypasses aiohttp's HEAD handling
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("the client went away")
            with open(opened.fd, "rb", buffering=0, closefd=False) as file:
                sent = await asyncio.get_running_loop().sendfile(transport, file, start, end - start)
            if sent < end - start:  # the file shrank while it was sent
                LOG.warning(
                    "%s shrank during its download: %d of %d bytes sent", opened.path, sent, end - start
                )
                _drop_connection(request)
                return response
        await response.write_eof()
        return response
    finally:
        os.close(opened.fd)


async def _stream_to_end(request: web.Request, opened: Download) -> web.StreamResponse:
    """A file whose size says nothing of its content (/proc, /sys): read to its end and send it
    chunked, without a Content-Length (a Range is ignored: the whole file is the answer)."""
    response = web.StreamResponse(status=200)
    response.content_type = "application/octet-stream"
    response.headers["Accept-Ranges"] = "none"
    response.headers[REQUEST_ID_HEADER] = REQUEST_ID.get() or ""
    await response.prepare(request)
    if request.method == "HEAD":
        await response.write_eof()
        return response
    try:
        while chunk := await opened.read_chunk(STREAM_CHUNK):
            await response.write(chunk)
    except OSError as exc:  # e.g. a file that would block: the answer stays incomplete, visibly
        LOG.warning("reading %s failed during its download: %s", opened.path, exc)
        _drop_connection(request)
        return response
    await response.write_eof()
    return response
