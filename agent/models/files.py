"""Request and result models of the files API. Paths are the caller's; relative ones are under
the desktop user's home."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from agent.files.service import LIST_LIMIT
from agent.models.base import Request, Result

PATH_DESCRIPTION = "File path; relative paths are under the desktop user's home"


class FileEntry(Result):
    """One file, folder or link (read from the files service's ``Entry``)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    name: str
    path: str = Field(description="Absolute path")
    type: Literal["file", "directory", "symlink", "other"]
    size: int
    mode: str = Field(description="Permission bits in octal, e.g. 0644")
    mtime: float = Field(description="Modification time, seconds since the epoch")
    target: str | None = Field(default=None, description="Where a symlink points")


class FolderListing(Result):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    path: str
    entries: list[FileEntry]
    truncated: bool = Field(description="More entries than `limit` exist")


class FileGetRequest(Request):
    type: Literal["files_get"] = "files_get"
    path: str = Field(min_length=1, description=PATH_DESCRIPTION, examples=["notes.txt"])
    range: str | None = Field(default=None, description="bytes=START-END (the Range header)")


class FilePutRequest(Request):
    type: Literal["files_put"] = "files_put"
    path: str = Field(min_length=1, description=PATH_DESCRIPTION, examples=["upload.txt"])
    mode: str | None = Field(
        default=None, description="Octal permission bits; default: the replaced file's, else 0644"
    )
    create_parents: bool = Field(default=True, description="Create missing folders")


class FileDeleteRequest(Request):
    type: Literal["files_delete"] = "files_delete"
    path: str = Field(min_length=1, description=PATH_DESCRIPTION, examples=["old.txt"])
    recursive: bool = Field(default=False, description="Delete a folder with its content")


class FileListRequest(Request):
    type: Literal["files_list"] = "files_list"
    path: str = Field(min_length=1, description=PATH_DESCRIPTION, examples=["Documents"])
    limit: int = Field(default=LIST_LIMIT, ge=1, description="Most entries returned")


class FileStatRequest(Request):
    type: Literal["files_stat"] = "files_stat"
    path: str = Field(min_length=1, description=PATH_DESCRIPTION, examples=["notes.txt"])


class MkdirRequest(Request):
    type: Literal["files_mkdir"] = "files_mkdir"
    path: str = Field(min_length=1, description=PATH_DESCRIPTION, examples=["Documents/new"])
    parents: bool = Field(default=True, description="Create missing parents; an existing folder is fine")
    mode: str | None = Field(default=None, description="Octal permission bits, e.g. 0755")


class FileMoveRequest(Request):
    type: Literal["files_move"] = "files_move"
    source: str = Field(min_length=1, description=PATH_DESCRIPTION, examples=["draft.txt"])
    destination: str = Field(min_length=1, description=PATH_DESCRIPTION, examples=["Documents/draft.txt"])
    overwrite: bool = Field(default=False, description="Replace an existing destination")
    create_parents: bool = Field(default=False, description="Create the destination's missing folders")
