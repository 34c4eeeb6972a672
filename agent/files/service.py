"""The files service: read, atomically write, list, stat, make folders, move and delete.

Every blocking call runs on the file threads (``creds.file_executor``), which access files as
the desktop user, and every path goes through the ``PathPolicy``. OS errors become the agent's
errors here, once: missing is 404, wrong kind or state is 409, no space is 413, not allowed 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, ParamSpec, TypeVar

from agent.config import Config
from agent.errors import (
    AgentError,
    Conflict,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from agent.exec.user import DesktopUser, resolve_user
from agent.files.creds import file_executor
from agent.files.paths import PathPolicy

P = ParamSpec("P")
T = TypeVar("T")

FileType = Literal["file", "directory", "symlink", "other"]
DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755
LIST_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    path: str
    type: FileType
    size: int
    mode: str  # permission bits in octal, "0644"
    mtime: float  # seconds since the epoch
    target: str | None = None  # a symlink's target


@dataclass(frozen=True, slots=True)
class Listing:
    path: str
    entries: tuple[Entry, ...]
    truncated: bool


@dataclass(frozen=True, slots=True)
class OpenFile:
    """An open regular file for download; the caller closes ``fd``."""

    fd: int
    path: str
    size: int
    mtime: float
    inode: int


def _entry(path: str, st: os.stat_result) -> Entry:
    mode = st.st_mode
    kind: FileType
    target = None
    if stat.S_ISLNK(mode):
        kind = "symlink"
        with contextlib.suppress(OSError):
            target = os.readlink(path)
    elif stat.S_ISDIR(mode):
        kind = "directory"
    elif stat.S_ISREG(mode):
        kind = "file"
    else:
        kind = "other"
    return Entry(
        name=os.path.basename(path) or "/",
        path=path,
        type=kind,
        size=st.st_size,
        mode=f"{stat.S_IMODE(mode):04o}",
        mtime=st.st_mtime,
        target=target,
    )


def os_error(exc: OSError, raw: str) -> AgentError:
    """The agent error for an OS error on the caller's path ``raw``."""
    where = f"{raw}: {exc.strerror or exc}"
    details = {"path": raw}
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"{where}", details=details)
    if isinstance(exc, PermissionError) or exc.errno == errno.EPERM:
        return PermissionDenied(f"{where} (as the desktop user)", details=details)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return PayloadTooLarge(where, details=details)
    if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL):
        return InvalidArgument(where, details=details)
    if isinstance(exc, IsADirectoryError | NotADirectoryError | FileExistsError) or exc.errno in (
        errno.ENOTEMPTY,
        errno.EROFS,
        errno.EBUSY,
        errno.EXDEV,
        errno.ETXTBSY,
    ):
        return Conflict(where, details=details)
    return AgentError(where, details=details)


def parse_mode(raw: str | int | None) -> int | None:
    """``"644"``, ``"0644"``, ``"0o644"`` or an int (taken as the octal digits the caller meant)."""
    if raw is None or raw == "":
        return None
    text = str(raw).strip().lower().removeprefix("0o")
    try:
        mode = int(text, 8)
    except ValueError:
        raise InvalidArgument(
            f"mode {raw!r} is not an octal permission like 0644", details={"field": "mode"}
        ) from None
    if not 0 <= mode <= 0o7777:
        raise InvalidArgument(f"mode {raw!r} is out of range", details={"field": "mode"})
    return mode


class Upload:
    """A file being written: a hidden temp file beside the target, renamed over it on commit.

    A reader of the target sees the old content or the new one, never a mix; a failed or
    aborted upload leaves the target untouched and no temp file behind.
    """

    def __init__(self, fd: int, temp: str, target: str, mode: int, raw: str) -> None:
        self.fd = fd
        self.temp = temp
        self.target = target
        self.mode = mode
        self.raw = raw
        self.size = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)

    def commit(self) -> Entry:
        try:
            os.fchmod(self.fd, self.mode)
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            os.rename(self.temp, self.target)
        except BaseException:
            self.abort()
            raise
        directory = os.open(os.path.dirname(self.target), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        return _entry(self.target, os.stat(self.target))

    def abort(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self.temp)


class FileService:
    def __init__(self, config: Config, user: DesktopUser | None = None) -> None:
        self.config = config
        self.user = user if user is not None else resolve_user(config.desktop_user)
        self.policy = PathPolicy(self.user.workdir, config.files_allowed_roots)
        self.max_bytes = config.files_max_bytes
        self._executor = file_executor(self.user)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking file call on the desktop user's file threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def submit(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the file threads without waiting (clean-up on cancellation paths)."""
        with contextlib.suppress(RuntimeError):  # the executor is already shut down
            self._executor.submit(fn)

    # Each public method below is blocking: call it through ``run``.

    def open_read(self, raw: str) -> OpenFile:
        try:
            path = self.policy.follow(raw)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as exc:
            raise os_error(exc, raw) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            kind = "a folder (use GET /files/list)" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise Conflict(f"{raw}: {kind}", details={"path": raw})
        return OpenFile(fd, path, st.st_size, st.st_mtime, st.st_ino)

    def begin_upload(self, raw: str, mode: int | None, create_parents: bool) -> Upload:
        try:
            target = self.policy.follow(raw)
            parent = os.path.dirname(target)
            if create_parents:
                os.makedirs(parent, mode=DEFAULT_DIR_MODE, exist_ok=True)
            elif not os.path.isdir(parent):
                if os.path.exists(parent):
                    raise Conflict(f"{raw}: {parent} is not a folder", details={"path": raw})
                raise NotFound(
                    f"{raw}: the folder {parent} does not exist (create_parents=true creates it)",
                    details={"path": raw},
                )
            try:
                existing = os.stat(target)
            except FileNotFoundError:
                existing = None
            if existing is not None and not stat.S_ISREG(existing.st_mode):
                raise Conflict(f"{raw}: exists and is not a regular file", details={"path": raw})
            if mode is None:
                mode = stat.S_IMODE(existing.st_mode) if existing is not None else DEFAULT_FILE_MODE
            temp = os.path.join(parent, f".{os.path.basename(target)}.{secrets.token_hex(4)}.upload")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise os_error(exc, raw) from None
        return Upload(fd, temp, target, mode, raw)

    def write(self, upload: Upload, data: bytes) -> None:
        try:
            upload.write(data)
        except OSError as exc:
            upload.abort()
            raise os_error(exc, upload.raw) from None

    def commit(self, upload: Upload) -> Entry:
        try:
            return upload.commit()
        except OSError as exc:
            raise os_error(exc, upload.raw) from None

    def stat(self, raw: str) -> Entry:
        try:
            path = self.policy.locate(raw)
            return _entry(path, os.lstat(path))
        except OSError as exc:
            raise os_error(exc, raw) from None

    def list(self, raw: str, limit: int = LIST_LIMIT) -> Listing:
        try:
            path = self.policy.follow(raw)
            entries: list[Entry] = []
            truncated = False
            with os.scandir(path) as scan:
                for item in scan:
                    if len(entries) >= limit:
                        truncated = True
                        break
                    with contextlib.suppress(FileNotFoundError):  # deleted while listing
                        entries.append(_entry(item.path, item.stat(follow_symlinks=False)))
        except NotADirectoryError:
            raise Conflict(f"{raw}: not a folder", details={"path": raw}) from None
        except OSError as exc:
            raise os_error(exc, raw) from None
        entries.sort(key=lambda entry: entry.name)
        return Listing(path, tuple(entries), truncated)

    def mkdir(self, raw: str, parents: bool, mode: int | None) -> Entry:
        try:
            path = self.policy.follow(raw)
            if parents:
                os.makedirs(path, mode=mode or DEFAULT_DIR_MODE, exist_ok=True)
            else:
                os.mkdir(path, mode or DEFAULT_DIR_MODE)
            if mode is not None:
                os.chmod(path, mode)  # mkdir's mode is filtered by the umask
            return _entry(path, os.lstat(path))
        except FileExistsError:
            raise Conflict(f"{raw}: already exists", details={"path": raw}) from None
        except OSError as exc:
            raise os_error(exc, raw) from None

    def delete(self, raw: str, recursive: bool) -> None:
        try:
            path = self.policy.locate(raw)
            if path == "/" or path in self.policy.roots or path == os.path.realpath(self.user.home):
                raise InvalidArgument(f"{raw}: refusing to delete {path}", details={"path": raw})
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                if recursive:
                    shutil.rmtree(path)  # does not follow symlinks out of the tree
                else:
                    os.rmdir(path)
            else:
                os.unlink(path)
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise Conflict(
                    f"{raw}: the folder is not empty (recursive=true deletes it with its content)",
                    details={"path": raw},
                ) from None
            raise os_error(exc, raw) from None

    def move(self, source_raw: str, destination_raw: str, overwrite: bool, create_parents: bool) -> Entry:
        try:
            source = self.policy.locate(source_raw)
            destination = self.policy.locate(destination_raw)
            os.lstat(source)
        except OSError as exc:
            raise os_error(exc, source_raw) from None
        try:
            if create_parents:
                os.makedirs(os.path.dirname(destination), mode=DEFAULT_DIR_MODE, exist_ok=True)
            if not overwrite and os.path.lexists(destination):
                raise Conflict(
                    f"{destination_raw}: already exists (overwrite=true replaces it)",
                    details={"path": destination_raw},
                )
            try:
                os.rename(source, destination)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                shutil.move(source, destination)  # another filesystem: copy, then delete
            return _entry(destination, os.lstat(destination))
        except OSError as exc:
            raise os_error(exc, destination_raw) from None
