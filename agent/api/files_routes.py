"""The files API: streamed download (with Range), streamed atomic upload, list, stat, mkdir, move,
delete. Paths are the caller's; relative ones are under the desktop user's home.

Downloads go out with ``sendfile`` from a descriptor opened by the desktop user's file thread,
so the kernel copies the bytes and the permission check is the user's. A download sends exactly
what it declares: files of pseudo filesystems (/proc, /sys), whose sizes are not their content,
are read to their end and sent chunked; a file that shrinks while it is sent ends the
connection, so a keep-alive client never reads the next answer as the rest of this one. Uploads are read from
the socket in chunks and written to a temp file, so neither costs memory in proportion to size.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from email.utils import formatdate
from typing import Any, Literal

from aiohttp import ClientPayloadError, web
from pydantic import Field

from agent.actions.registry import validate
from agent.api.appkeys import SERVICES_KEY
from agent.api.body import read_json
from agent.api.middleware import REQUEST_ID_HEADER, error_response
from agent.api.streaming import ERROR, json_answer, json_body
from agent.errors import InvalidArgument, PayloadTooLarge, PermissionDenied
from agent.files.service import Entry, FileService, Listing, OpenFile, parse_mode
from agent.models.base import Request, Result, Success
from agent.supervision.logs import REQUEST_ID

WRITE_BATCH = 1 << 20  # bytes gathered from the socket per write on the file thread
STREAM_CHUNK = 1 << 16  # bytes read per step from a file of unknown size
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

LOG = logging.getLogger(__name__)


class EntryModel(Result):
    name: str
    path: str = Field(description="Absolute path")
    type: Literal["file", "directory", "symlink", "other"]
    size: int
    mode: str = Field(description="Permission bits in octal, e.g. 0644")
    mtime: float = Field(description="Modification time, seconds since the epoch")
    target: str | None = Field(default=None, description="Where a symlink points")


class ListingModel(Result):
    path: str
    entries: list[EntryModel]
    truncated: bool = Field(description="More entries than `limit` exist")


class MkdirRequest(Request):
    path: str
    parents: bool = Field(default=True, description="Create missing parents; an existing folder is fine")
    mode: str | None = Field(default=None, description="Octal permission bits, e.g. 0755")


class MoveRequest(Request):
    source: str
    destination: str
    overwrite: bool = Field(default=False, description="Replace an existing destination")
    create_parents: bool = Field(default=False, description="Create the destination's missing folders")


def entry_json(entry: Entry) -> dict[str, Any]:
    data = {
        "name": entry.name,
        "path": entry.path,
        "type": entry.type,
        "size": entry.size,
        "mode": entry.mode,
        "mtime": entry.mtime,
    }
    if entry.target is not None:
        data["target"] = entry.target
    return data


def _files(request: web.Request) -> FileService:
    files = request.app[SERVICES_KEY].files
    if files is None or not request.app[SERVICES_KEY].config.exec_enabled:
        raise PermissionDenied("the files API is disabled on this agent (--exec false)")
    return files


def _path(request: web.Request) -> str:
    path = request.query.get("path")
    if not path:
        raise InvalidArgument("the query parameter 'path' is required", details={"field": "path"})
    return path


def _flag(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise InvalidArgument(f"{name}: expected true or false, got {raw!r}", details={"field": name})


def _byte_position(digits: str) -> int:
    """A Range number; one longer than any file size could be is just "past every end"
    (Python refuses to convert more than 4,300 digits, and no file has 2**63 bytes)."""
    return int(digits) if len(digits) <= 18 else 1 << 63


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` for one satisfiable byte range; None to send everything.

    Several ranges, or a header we do not understand, get the whole file (RFC 9110 allows it);
    a range that starts past the end raises ``RangeNotSatisfiable``.
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


class RangeNotSatisfiableError(Exception):
    pass


def _drop_connection(request: web.Request) -> None:
    """End the connection after what was sent: the response cannot be completed as declared,
    and a keep-alive client must see it end rather than read the next answer as its rest."""
    if request.protocol is not None:
        request.protocol.force_close()


async def download(request: web.Request) -> web.StreamResponse:
    files = _files(request)
    opened: OpenFile = await files.run(files.open_read, _path(request))
    try:
        if not opened.size_known:
            return await _stream_to_end(request, files, opened)
        try:
            span = parse_range(request.headers.get("Range"), opened.size)
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
        if end > start:
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


async def _stream_to_end(request: web.Request, files: FileService, opened: OpenFile) -> web.StreamResponse:
    """A file whose size says nothing of its content (/proc, /sys): read to its end and send it
    chunked, without a Content-Length (a Range is ignored: the whole file is the answer)."""
    response = web.StreamResponse(status=200)
    response.content_type = "application/octet-stream"
    response.headers["Accept-Ranges"] = "none"
    response.headers[REQUEST_ID_HEADER] = REQUEST_ID.get() or ""
    await response.prepare(request)
    try:
        while chunk := await files.run(os.read, opened.fd, STREAM_CHUNK):
            await response.write(chunk)
    except OSError as exc:  # e.g. a file that would block: the answer stays incomplete, visibly
        LOG.warning("reading %s failed during its download: %s", opened.path, exc)
        _drop_connection(request)
        return response
    await response.write_eof()
    return response


async def upload(request: web.Request) -> web.Response:
    files = _files(request)
    path = _path(request)
    mode = parse_mode(request.query.get("mode"))
    create_parents = _flag(request, "create_parents", True)
    limit = files.max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(
            f"the file is {request.content_length} bytes; the limit is {limit} (files_max_bytes)",
            details={"limit": limit},
        )
    pending = await files.run(files.begin_upload, path, mode, create_parents)
    try:
        batch: list[bytes] = []
        batched = 0
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(
                    f"the upload passed the {limit} byte limit (files_max_bytes)", details={"limit": limit}
                )
            batch.append(chunk)
            batched += len(chunk)
            if batched >= WRITE_BATCH:
                await files.run(files.write, pending, b"".join(batch))
                batch.clear()
                batched = 0
        if batch:
            await files.run(files.write, pending, b"".join(batch))
        entry = await files.run(files.commit, pending)
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            files.submit(pending.abort)  # not awaited: the handler is being cancelled
        else:
            await files.run(pending.abort)  # gone before the error answer says nothing was written
        if isinstance(exc, ConnectionError | ClientPayloadError | asyncio.IncompleteReadError):
            raise InvalidArgument("the upload ended before its end; nothing was written") from None
        raise
    return web.json_response(entry_json(entry))


async def delete(request: web.Request) -> web.Response:
    files = _files(request)
    await files.run(files.delete, _path(request), _flag(request, "recursive", False))
    return web.json_response(Success().model_dump())


async def list_folder(request: web.Request) -> web.Response:
    files = _files(request)
    limit_raw = request.query.get("limit", "10000")
    try:
        limit = int(limit_raw)
    except ValueError:
        raise InvalidArgument(
            f"limit: expected an integer, got {limit_raw!r}", details={"field": "limit"}
        ) from None
    if limit < 1:
        raise InvalidArgument("limit: must be >= 1", details={"field": "limit"})
    listing: Listing = await files.run(files.list, _path(request), limit)
    return web.json_response(
        {
            "path": listing.path,
            "entries": [entry_json(e) for e in listing.entries],
            "truncated": listing.truncated,
        }
    )


async def stat(request: web.Request) -> web.Response:
    files = _files(request)
    return web.json_response(entry_json(await files.run(files.stat, _path(request))))


async def mkdir(request: web.Request) -> web.Response:
    files = _files(request)
    req = validate(MkdirRequest, await read_json(request))
    entry = await files.run(files.mkdir, req.path, req.parents, parse_mode(req.mode))
    return web.json_response(entry_json(entry))


async def move(request: web.Request) -> web.Response:
    files = _files(request)
    req = validate(MoveRequest, await read_json(request))
    entry = await files.run(files.move, req.source, req.destination, req.overwrite, req.create_parents)
    return web.json_response(entry_json(entry))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/files", download, name="files_get", allow_head=False)
    app.router.add_put("/files", upload, name="files_put")
    app.router.add_delete("/files", delete, name="files_delete")
    app.router.add_get("/files/list", list_folder, name="files_list", allow_head=False)
    app.router.add_get("/files/stat", stat, name="files_stat", allow_head=False)
    app.router.add_post("/files/mkdir", mkdir, name="files_mkdir")
    app.router.add_post("/files/move", move, name="files_move")


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


PATH_QUERY = _query(
    "path", "File path; relative paths are under the desktop user's home", {"type": "string"}, True
)
BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
TAGS = ["files"]
ENTRY = json_answer(EntryModel)
COMMON_ERRORS = {"400": ERROR, "401": ERROR, "403": ERROR, "404": ERROR, "409": ERROR}

OPENAPI_PATHS: dict[str, Any] = {
    "/files": {
        "get": {
            "operationId": "files_get",
            "tags": TAGS,
            "summary": "Download a file (Range answers 206)",
            "parameters": [
                PATH_QUERY,
                {
                    "name": "Range",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "bytes=START-END",
                },
            ],
            "responses": {
                "200": {"description": "The file's bytes", "content": BINARY},
                "206": {"description": "The requested range", "content": BINARY},
                "416": ERROR,
                **COMMON_ERRORS,
            },
        },
        "put": {
            "operationId": "files_put",
            "tags": TAGS,
            "summary": "Upload a file atomically (temp file, fsync, rename): readers never see half a file",
            "parameters": [
                PATH_QUERY,
                _query(
                    "mode",
                    "Octal permission bits; default: the replaced file's, else 0644",
                    {"type": "string"},
                ),
                _query("create_parents", "Create missing folders", {"type": "boolean", "default": True}),
            ],
            "requestBody": {"required": True, "content": BINARY},
            "responses": {"200": ENTRY, "413": ERROR, **COMMON_ERRORS},
        },
        "delete": {
            "operationId": "files_delete",
            "tags": TAGS,
            "summary": "Delete a file, link or folder",
            "parameters": [
                PATH_QUERY,
                _query(
                    "recursive", "Delete a folder with its content", {"type": "boolean", "default": False}
                ),
            ],
            "responses": {"200": json_answer(Success), **COMMON_ERRORS},
        },
    },
    "/files/list": {
        "get": {
            "operationId": "files_list",
            "tags": TAGS,
            "summary": "A folder's entries, sorted by name",
            "parameters": [
                PATH_QUERY,
                _query("limit", "Most entries returned", {"type": "integer", "minimum": 1, "default": 10000}),
            ],
            "responses": {"200": json_answer(ListingModel), **COMMON_ERRORS},
        }
    },
    "/files/stat": {
        "get": {
            "operationId": "files_stat",
            "tags": TAGS,
            "summary": "One entry (a symlink is described, not followed)",
            "parameters": [PATH_QUERY],
            "responses": {"200": ENTRY, **COMMON_ERRORS},
        }
    },
    "/files/mkdir": {
        "post": {
            "operationId": "files_mkdir",
            "tags": TAGS,
            "summary": "Create a folder",
            "requestBody": json_body(MkdirRequest),
            "responses": {"200": ENTRY, **COMMON_ERRORS},
        }
    },
    "/files/move": {
        "post": {
            "operationId": "files_move",
            "tags": TAGS,
            "summary": "Move or rename a file or folder",
            "requestBody": json_body(MoveRequest),
            "responses": {"200": ENTRY, **COMMON_ERRORS},
        }
    },
}
