"""Turning a caller's path into an open folder we act in, race-free, beneath the allowed roots.

A path is made absolute (relative ones are under the desktop user's home), normalised, and
assigned to the allowed root it lies in (lexically, else by where its folder really is). From
then on nothing is looked up by its full name: the root is opened, and every further component
is resolved by the kernel with ``openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`` relative to
it, so neither ``..``, nor a symlink, nor a folder swapped for a symlink while we work can lead
outside the root. Operations then act with ``*at`` calls on the open folder
(``os.open(dir_fd=)``, ``os.rename(src_dir_fd=, dst_dir_fd=)``, ``os.unlink(dir_fd=)``...).

Symlinks inside a root are followed when their target is inside the same root: relative ones by
the kernel, absolute ones by re-resolving their real path beneath the root (so the answer can
never depend on something outside it). A link leading outside is refused with 403, whether or
not its target exists, so the answer tells nothing about what lies outside.

Without roots every path is allowed; paths are still opened with ``RESOLVE_NO_MAGICLINKS`` so
``/proc/self/fd/N`` cannot reopen the agent's own descriptors. All of this runs on the file
threads, with the desktop user's rights.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from agent.errors import InvalidArgument, PathNotAllowed
from agent.files.syscalls import (
    AT_FDCWD,
    RESOLVE_BENEATH,
    RESOLVE_NO_MAGICLINKS,
    RESOLVE_NO_SYMLINKS,
    openat2,
)

FOLDER = os.O_PATH | os.O_DIRECTORY
MAX_LINKS = 40  # symlinks followed for one path, like the kernel's own limit
DEFAULT_DIR_MODE = 0o755


class Located:
    """An open folder (an ``O_PATH`` descriptor) and the name of the entry to act on in it.

    ``name`` is empty when the path is a root itself; then ``folder`` is that root. Close it
    (or use it as a context manager) when the operation is done.
    """

    def __init__(self, folder: int, name: str, path: str) -> None:
        self.folder = folder
        self.name = name
        self.path = path  # absolute, for answers and messages

    def close(self) -> None:
        if self.folder >= 0:
            os.close(self.folder)
            self.folder = -1

    def __enter__(self) -> Located:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _beneath(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` ('' for the root itself), or None when it is not inside."""
    if path == root:
        return ""
    prefix = root.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def _opened_path(fd: int, fallback: str) -> str:
    """Where the open ``fd`` really is (links followed), as the kernel names it."""
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return fallback
    return path if path.startswith("/") and not path.endswith(" (deleted)") else fallback


def _realpath(path: str) -> str | None:
    """``os.path.realpath``, or None when links change under it (a race: treated as outside)."""
    try:
        return os.path.realpath(path)
    except OSError:
        return None


class PathPolicy:
    def __init__(self, home: str, roots: Sequence[Path]) -> None:
        self.home = home
        self.roots = tuple(os.path.realpath(root) for root in roots)
        self._resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS if self.roots else RESOLVE_NO_MAGICLINKS

    def absolute(self, raw: str) -> str:
        if not raw:
            raise InvalidArgument("path: empty", details={"field": "path"})
        if "\x00" in raw:
            raise InvalidArgument("path: contains a NUL byte", details={"field": "path"})
        if raw == "~" or raw.startswith("~/"):
            raw = self.home + raw[1:]
        path = raw if os.path.isabs(raw) else os.path.join(self.home, raw)
        return os.path.normpath(path)

    def _outside(self, raw: str) -> PathNotAllowed:
        return PathNotAllowed(
            f"path {raw!r} resolves outside the folders this agent may touch",
            details={"path": raw, "allowed_roots": list(self.roots)},
        )

    def _split(self, path: str, raw: str) -> tuple[str, str]:
        """The root ``path`` belongs to and the path relative to it.

        Lexically first; else by the real location of its folder (a symlinked way into a root
        is fine: it only picks the root, every later lookup is confined beneath it).
        """
        if not self.roots:
            return "/", path.lstrip("/")
        for root in self.roots:
            rel = _beneath(path, root)
            if rel is not None:
                return root, rel
        real = _realpath(os.path.dirname(path))
        if real is not None:
            for root in self.roots:
                rel = _beneath(os.path.join(real, os.path.basename(path)), root)
                if rel is not None:
                    return root, rel
        raise self._outside(raw)

    def _open_root(self, root: str) -> int:
        # Roots are real paths (resolved at start): no symlink may have been swapped into them since.
        return openat2(AT_FDCWD, root, FOLDER, resolve=RESOLVE_NO_SYMLINKS if self.roots else 0)

    def _open_beneath(self, root: str, root_fd: int, rel: str, flags: int, raw: str) -> tuple[int, str]:
        """Open ``rel`` beneath the root; the descriptor and the path it was found at (relative)."""
        for attempt in range(8):
            try:
                return openat2(root_fd, rel or ".", flags, resolve=self._resolve), rel
            except OSError as exc:
                if exc.errno == errno.EAGAIN and attempt < 7:  # a rename raced a "..": try again
                    continue
                if exc.errno != errno.EXDEV:
                    raise
            # EXDEV: a step led above the root. An absolute link to a place inside the root is
            # fine: resolve where it really leads and open that, still confined, once.
            real_path = _realpath(os.path.join(root, rel))
            real = None if real_path is None else _beneath(real_path, root)
            if real is None or real == rel:
                raise self._outside(raw)
            rel = real
        raise self._outside(raw)

    def open(self, raw: str, flags: int) -> tuple[int, str]:
        """Open the path with every symlink followed (confined); the descriptor and its path."""
        root, rel = self._split(self.absolute(raw), raw)
        root_fd = self._open_root(root)
        try:
            fd, rel = self._open_beneath(root, root_fd, rel, flags, raw)
        finally:
            os.close(root_fd)
        return fd, _opened_path(fd, os.path.join(root, rel) if rel else root)

    def locate(self, raw: str, *, create_parents: bool = False) -> Located:
        """The open folder holding the path and its last component, which is not followed."""
        return self._locate(self.absolute(raw), raw, create_parents)

    def locate_target(self, raw: str, *, create_parents: bool = False) -> Located:
        """Like ``locate``, but when the last component is a symlink, where it leads (confined):
        what writing to the path writes to."""
        path = self.absolute(raw)
        for _ in range(MAX_LINKS):
            located = self._locate(path, raw, create_parents)
            try:
                target = os.readlink(located.name, dir_fd=located.folder) if located.name else None
            except OSError as exc:  # not a link (EINVAL) or not there yet (ENOENT)
                if exc.errno not in (errno.EINVAL, errno.ENOENT):
                    located.close()
                    raise
                return located
            if target is None:
                return located
            located.close()
            path = os.path.normpath(os.path.join(os.path.dirname(located.path), target))
        raise InvalidArgument(f"{raw}: too many levels of symbolic links", details={"path": raw})

    def _locate(self, path: str, raw: str, create_parents: bool) -> Located:
        root, rel = self._split(path, raw)
        root_fd = self._open_root(root)
        if not rel:
            return Located(root_fd, "", root)
        folder_rel, name = os.path.split(rel)
        try:
            if create_parents:
                folder, folder_rel = self._make_folders(root, root_fd, folder_rel, raw)
            else:
                folder, folder_rel = self._open_beneath(root, root_fd, folder_rel, FOLDER, raw)
        finally:
            os.close(root_fd)
        return Located(folder, name, os.path.join(root, folder_rel, name))

    def _make_folders(self, root: str, root_fd: int, rel: str, raw: str) -> tuple[int, str]:
        """Open ``rel`` beneath the root, creating its missing folders one confined step at a time."""
        try:
            return self._open_beneath(root, root_fd, rel, FOLDER, raw)
        except FileNotFoundError:
            pass
        parts = [part for part in rel.split("/") if part]
        folder, done = os.dup(root_fd), ""
        try:
            for part in parts:
                step = os.path.join(done, part)
                with contextlib.suppress(FileExistsError):  # made meanwhile, or only the tail is missing
                    os.mkdir(part, DEFAULT_DIR_MODE, dir_fd=folder)
                following, done = self._open_beneath(root, root_fd, step, FOLDER, raw)
                os.close(folder)
                folder = following
        except BaseException:
            os.close(folder)
            raise
        return folder, done
