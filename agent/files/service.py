"""The files service: read, atomically write, list, stat, make folders, move and delete.

Every blocking call runs on the file threads (``creds.file_executor``), which access files as
the desktop user. Every path is resolved beneath its allowed root by the ``PathPolicy`` into an
open folder, and the operation acts on that folder with ``*at`` calls: a symlink swapped in
meanwhile cannot redirect it (temp files of uploads included). OS errors become the agent's
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
    FileConflict,
    FileNotFound,
    FilePermissionDenied,
    InvalidArgument,
    PayloadTooLarge,
)
from agent.files.creds import file_executor
from agent.files.paths import DEFAULT_DIR_MODE, Located, PathPolicy
from agent.files.syscalls import PSEUDO_FILESYSTEMS, RENAME_NOREPLACE, filesystem_type, renameat2
from agent.session.user import DesktopUser, resolve_user

P = ParamSpec("P")
T = TypeVar("T")

FileType = Literal["file", "directory", "symlink", "other"]
DEFAULT_FILE_MODE = 0o644
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
    size_known: bool = True  # False on /proc, /sys and the like, whose st_size is not their content


def _entry(path: str, st: os.stat_result, target: str | None = None) -> Entry:
    mode = st.st_mode
    kind: FileType
    if stat.S_ISLNK(mode):
        kind = "symlink"
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


def _entry_at(folder: int, name: str, path: str) -> Entry:
    """The entry ``name`` in the open ``folder`` (the folder itself when ``name`` is empty)."""
    if not name:
        return _entry(path, os.fstat(folder))
    st = os.stat(name, dir_fd=folder, follow_symlinks=False)
    target = None
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            target = os.readlink(name, dir_fd=folder)
    return _entry(path, st, target)


def os_error(exc: OSError, raw: str) -> AgentError:
    """The agent error for an OS error on the caller's path ``raw``."""
    where = f"{raw}: {exc.strerror or exc}"
    details = {"path": raw}
    if isinstance(exc, FileNotFoundError):
        return FileNotFound(f"{where}", details=details)
    if isinstance(exc, PermissionError) or exc.errno == errno.EPERM:
        return FilePermissionDenied(f"{where} (as the desktop user)", details=details)
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
        return FileConflict(where, details=details)
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

    Both live in one folder held open (resolved beneath the root once), so the temp file and
    the result are where the path led when the upload began, whatever is renamed meanwhile. A
    reader of the target sees the old content or the new one, never a mix; a failed or aborted
    upload leaves the target untouched and no temp file behind.
    """

    def __init__(self, fd: int, temp: str, target: Located, mode: int, raw: str) -> None:
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
        folder, name = self.target.folder, self.target.name
        try:
            os.fchmod(self.fd, self.mode)
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            os.rename(self.temp, name, src_dir_fd=folder, dst_dir_fd=folder)
            with contextlib.suppress(OSError):  # a folder we may write but not read cannot be synced
                directory = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=folder)
                try:
                    os.fsync(directory)  # the rename itself survives a crash
                finally:
                    os.close(directory)
            return _entry_at(folder, name, self.target.path)
        except BaseException:
            self.abort()
            raise
        finally:
            self.target.close()

    def abort(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        if self.target.folder >= 0:
            with contextlib.suppress(OSError):
                os.unlink(self.temp, dir_fd=self.target.folder)
            self.target.close()


def _reopen(fd: int, flags: int) -> int:
    """A new descriptor of the very inode behind the ``O_PATH`` descriptor ``fd``."""
    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC)


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

    async def read_file(self, raw: str, limit: int) -> bytes:
        """A whole regular file for another service (the wallpaper), read under this service's
        rules: as the desktop user, within the allowed roots, on its own threads."""
        return await self.run(self.read_bytes, raw, limit)

    def submit(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the file threads without waiting (clean-up on cancellation paths)."""
        with contextlib.suppress(RuntimeError):  # the executor is already shut down
            self._executor.submit(fn)

    # Each public method below is blocking: call it through ``run``.

    def open_read(self, raw: str) -> OpenFile:
        """Open a regular file for reading; anything else (folder, FIFO, device) is refused
        before it is opened for reading, so nothing blocks and no device is touched."""
        try:
            handle, path = self.policy.open(raw, os.O_PATH)
        except OSError as exc:
            raise os_error(exc, raw) from None
        try:
            st = os.fstat(handle)
            if not stat.S_ISREG(st.st_mode):
                kind = "a folder (use GET /files/list)" if stat.S_ISDIR(st.st_mode) else "not a regular file"
                raise FileConflict(f"{raw}: {kind}", details={"path": raw})
            fd = _reopen(handle, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise os_error(exc, raw) from None
        finally:
            os.close(handle)
        try:
            size_known = filesystem_type(fd) not in PSEUDO_FILESYSTEMS
        except OSError:
            size_known = False
        return OpenFile(fd, path, st.st_size, st.st_mtime, st.st_ino, size_known)

    def read_bytes(self, raw: str, limit: int) -> bytes:
        """A whole regular file of at most ``limit`` bytes (PayloadTooLarge beyond)."""
        opened = self.open_read(raw)
        try:
            chunks: list[bytes] = []
            size = 0
            while chunk := os.read(opened.fd, min(1 << 20, limit + 1 - size)):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"{raw}: larger than {limit} bytes", details={"path": raw, "max_bytes": limit}
                    )
            return b"".join(chunks)
        except OSError as exc:
            raise os_error(exc, raw) from None
        finally:
            os.close(opened.fd)

    def begin_upload(self, raw: str, mode: int | None, create_parents: bool) -> Upload:
        try:
            target = self.policy.locate_target(raw, create_parents=create_parents)
        except FileNotFoundError:
            raise FileNotFound(
                f"{raw}: its folder does not exist (create_parents=true creates it)", details={"path": raw}
            ) from None
        except NotADirectoryError:
            raise FileConflict(f"{raw}: part of its folder is not a folder", details={"path": raw}) from None
        except OSError as exc:
            raise os_error(exc, raw) from None
        try:
            if not target.name:
                raise FileConflict(f"{raw}: is a folder", details={"path": raw})
            try:
                existing = os.stat(target.name, dir_fd=target.folder, follow_symlinks=False)
            except FileNotFoundError:
                existing = None
            if existing is not None and not stat.S_ISREG(existing.st_mode):
                raise FileConflict(f"{raw}: exists and is not a regular file", details={"path": raw})
            if mode is None:
                mode = stat.S_IMODE(existing.st_mode) if existing is not None else DEFAULT_FILE_MODE
            temp = f".{target.name}.{secrets.token_hex(4)}.upload"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(temp, flags, 0o600, dir_fd=target.folder)
        except BaseException as exc:
            target.close()
            if isinstance(exc, OSError):
                raise os_error(exc, raw) from None
            raise
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
            with self.policy.locate(raw) as located:
                return _entry_at(located.folder, located.name, located.path)
        except OSError as exc:
            raise os_error(exc, raw) from None

    def list(self, raw: str, limit: int = LIST_LIMIT) -> Listing:
        try:
            fd, path = self.policy.open(raw, os.O_RDONLY | os.O_DIRECTORY)
        except NotADirectoryError:
            raise FileConflict(f"{raw}: not a folder", details={"path": raw}) from None
        except OSError as exc:
            raise os_error(exc, raw) from None
        entries: list[Entry] = []
        truncated = False
        try:
            with os.scandir(fd) as scan:
                for item in scan:
                    if len(entries) >= limit:
                        truncated = True
                        break
                    with contextlib.suppress(FileNotFoundError):  # deleted while listing
                        entries.append(_entry_at(fd, item.name, os.path.join(path, item.name)))
        except OSError as exc:
            raise os_error(exc, raw) from None
        finally:
            os.close(fd)
        entries.sort(key=lambda entry: entry.name)
        return Listing(path, tuple(entries), truncated)

    def mkdir(self, raw: str, parents: bool, mode: int | None) -> Entry:
        try:
            with self.policy.locate_target(raw, create_parents=parents) as located:
                folder, name = located.folder, located.name
                try:
                    if not name:
                        raise FileExistsError(errno.EEXIST, "File exists")
                    os.mkdir(name, mode or DEFAULT_DIR_MODE, dir_fd=folder)
                except FileExistsError:
                    existing = (
                        os.fstat(folder) if not name else os.stat(name, dir_fd=folder, follow_symlinks=False)
                    )
                    if not parents or not stat.S_ISDIR(existing.st_mode):
                        raise
                if mode is not None and name:  # mkdir's mode is filtered by the umask
                    os.chmod(name, mode, dir_fd=folder, follow_symlinks=False)
                return _entry_at(folder, name, located.path)
        except FileExistsError:
            raise FileConflict(f"{raw}: already exists", details={"path": raw}) from None
        except OSError as exc:
            raise os_error(exc, raw) from None

    def _protected(self, st: os.stat_result) -> bool:
        """A root or the user's home: never deleted, even when asked."""
        for path in (*self.policy.roots, self.user.home, "/"):
            with contextlib.suppress(OSError):
                other = os.stat(path)
                if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
                    return True
        return False

    def delete(self, raw: str, recursive: bool) -> None:
        try:
            with self.policy.locate(raw) as located:
                folder, name = located.folder, located.name
                st = os.stat(name, dir_fd=folder, follow_symlinks=False) if name else os.fstat(folder)
                if not name or (stat.S_ISDIR(st.st_mode) and self._protected(st)):
                    raise InvalidArgument(f"{raw}: refusing to delete {located.path}", details={"path": raw})
                if stat.S_ISDIR(st.st_mode):
                    if recursive:
                        shutil.rmtree(name, dir_fd=folder)  # descriptor-based: follows no symlink out
                    else:
                        os.rmdir(name, dir_fd=folder)
                else:
                    os.unlink(name, dir_fd=folder)
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise FileConflict(
                    f"{raw}: the folder is not empty (recursive=true deletes it with its content)",
                    details={"path": raw},
                ) from None
            raise os_error(exc, raw) from None

    def move(self, source_raw: str, destination_raw: str, overwrite: bool, create_parents: bool) -> Entry:
        try:
            source = self.policy.locate(source_raw)
        except OSError as exc:
            raise os_error(exc, source_raw) from None
        with source:
            try:
                if not source.name:
                    raise InvalidArgument(
                        f"{source_raw}: refusing to move {source.path}", details={"path": source_raw}
                    )
                source_stat = os.stat(source.name, dir_fd=source.folder, follow_symlinks=False)
            except OSError as exc:
                raise os_error(exc, source_raw) from None
            try:
                with self.policy.locate(destination_raw, create_parents=create_parents) as destination:
                    if not destination.name:
                        raise FileExistsError(errno.EEXIST, "File exists")
                    _move_at(source, source_stat, destination, overwrite)
                    return _entry_at(destination.folder, destination.name, destination.path)
            except FileExistsError:
                raise FileConflict(
                    f"{destination_raw}: already exists (overwrite=true replaces it)",
                    details={"path": destination_raw},
                ) from None
            except OSError as exc:
                raise os_error(exc, destination_raw) from None


def _move_at(source: Located, source_stat: os.stat_result, destination: Located, overwrite: bool) -> None:
    """Rename between two open folders; without ``overwrite`` atomically refusing to replace.
    Across filesystems a regular file is copied (temp file, rename) and its source deleted."""
    flags = 0 if overwrite else RENAME_NOREPLACE
    try:
        renameat2(source.folder, source.name, destination.folder, destination.name, flags)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        if not stat.S_ISREG(source_stat.st_mode):
            raise FileConflict(
                f"{source.path}: only files can be moved to another filesystem (copy the folder instead)",
                details={"path": source.path},
            ) from None
    reader = os.open(
        source.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=source.folder
    )
    temp = f".{destination.name}.{secrets.token_hex(4)}.move"
    try:
        writer = os.open(
            temp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=destination.folder,
        )
        try:
            while chunk := os.read(reader, 1 << 20):
                os.write(writer, chunk)  # a regular file takes every byte
            os.fchmod(writer, stat.S_IMODE(source_stat.st_mode))
            os.fsync(writer)
        finally:
            os.close(writer)
        renameat2(destination.folder, temp, destination.folder, destination.name, flags)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=destination.folder)
        raise
    finally:
        os.close(reader)
    os.unlink(source.name, dir_fd=source.folder)
