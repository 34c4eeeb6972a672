"""The files API: download (with Range), atomic streamed upload, list, stat, mkdir, move, delete.

Every call runs on the desktop user's file threads (``FileService.run``), so permissions are the
user's and the allowed roots hold. JSON operations are also actions (/actions, /batch);
download and upload carry raw bytes and are REST only. Uploads are read in chunks and written to
a temp file, so neither direction costs memory in proportion to the file's size.
"""

from __future__ import annotations

import asyncio
import os

from agent.actions.capabilities import Capability
from agent.actions.outputs import ByteBody, Download
from agent.actions.registry import REGISTRY
from agent.errors import PayloadTooLarge, Unavailable
from agent.files.service import FileService, parse_mode
from agent.models.base import Success
from agent.models.files import (
    FileDeleteRequest,
    FileEntry,
    FileGetRequest,
    FileListRequest,
    FileMoveRequest,
    FilePutRequest,
    FileStatRequest,
    FolderListing,
    MkdirRequest,
)
from agent.services import Services

WRITE_BATCH = 1 << 20  # bytes gathered from the socket per write on the file thread


def file_service(services: Services) -> FileService:
    """The files service (its capability was checked from the declaration)."""
    if services.files is None:
        raise Unavailable("the files API is not available in this agent")
    return services.files


async def download(services: Services, req: FileGetRequest) -> Download:
    files = file_service(services)
    opened = await files.run(files.open_read, req.path)

    async def read_chunk(size: int) -> bytes:
        return await files.run(os.read, opened.fd, size)

    return Download(
        fd=opened.fd,
        path=opened.path,
        size=opened.size,
        mtime=opened.mtime,
        inode=opened.inode,
        size_known=opened.size_known,
        read_chunk=read_chunk,
        range=req.range,
    )


async def upload(services: Services, req: FilePutRequest, body: ByteBody) -> FileEntry:
    files = file_service(services)
    limit = files.max_bytes
    if body.length is not None and body.length > limit:
        raise PayloadTooLarge(
            f"the file is {body.length} bytes; the limit is {limit} (files_max_bytes)",
            details={"limit": limit},
        )
    pending = await files.run(files.begin_upload, req.path, parse_mode(req.mode), req.create_parents)
    try:
        batch: list[bytes] = []
        batched = 0
        total = 0
        async for chunk in body.chunks:
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
    except asyncio.CancelledError:
        files.submit(pending.abort)  # not awaited: the handler is being cancelled
        raise
    except BaseException:
        await files.run(pending.abort)  # gone before the error answer says nothing was written
        raise
    return FileEntry.model_validate(entry)


async def delete(services: Services, req: FileDeleteRequest) -> Success:
    files = file_service(services)
    await files.run(files.delete, req.path, req.recursive)
    return Success()


async def list_folder(services: Services, req: FileListRequest) -> FolderListing:
    files = file_service(services)
    return FolderListing.model_validate(await files.run(files.list, req.path, req.limit))


async def stat(services: Services, req: FileStatRequest) -> FileEntry:
    files = file_service(services)
    return FileEntry.model_validate(await files.run(files.stat, req.path))


async def mkdir(services: Services, req: MkdirRequest) -> FileEntry:
    files = file_service(services)
    return FileEntry.model_validate(await files.run(files.mkdir, req.path, req.parents, parse_mode(req.mode)))


async def move(services: Services, req: FileMoveRequest) -> FileEntry:
    files = file_service(services)
    entry = await files.run(files.move, req.source, req.destination, req.overwrite, req.create_parents)
    return FileEntry.model_validate(entry)


ERRORS = (400, 401, 403, 404, 409)
_COMMON = {"tag": "files", "capability": Capability.FILES, "errors": ERRORS}
REGISTRY.add(
    "files_get",
    FileGetRequest,
    download,
    summary="Download a file (Range answers 206)",
    route="/files",
    method="GET",
    media="bytes",
    ok="The file's bytes",
    replies={206: "The requested range"},
    headers={"Range": "range"},
    actions=False,
    **{**_COMMON, "errors": (416, *ERRORS)},
)
REGISTRY.add(
    "files_put",
    FilePutRequest,
    upload,
    summary="Upload a file atomically (temp file, fsync, rename): readers never see half a file",
    route="/files",
    method="PUT",
    result=FileEntry,
    body="bytes",
    actions=False,
    **{**_COMMON, "errors": (413, *ERRORS)},
)
REGISTRY.add(
    "files_delete",
    FileDeleteRequest,
    delete,
    summary="Delete a file, link or folder",
    route="/files",
    method="DELETE",
    result=Success,
    **_COMMON,
)
REGISTRY.add(
    "files_list",
    FileListRequest,
    list_folder,
    summary="A folder's entries, sorted by name",
    route="/files/list",
    method="GET",
    result=FolderListing,
    **_COMMON,
)
REGISTRY.add(
    "files_stat",
    FileStatRequest,
    stat,
    summary="One entry (a symlink is described, not followed)",
    route="/files/stat",
    method="GET",
    result=FileEntry,
    **_COMMON,
)
REGISTRY.add(
    "files_mkdir",
    MkdirRequest,
    mkdir,
    summary="Create a folder",
    route="/files/mkdir",
    result=FileEntry,
    **_COMMON,
)
REGISTRY.add(
    "files_move",
    FileMoveRequest,
    move,
    summary="Move or rename a file or folder",
    route="/files/move",
    result=FileEntry,
    **_COMMON,
)
