"""Turning a caller's path into the one we touch: home-relative, normalised, inside the roots.

Two forms: ``locate`` resolves every folder on the way but leaves the last component alone (for
operations on a link itself: stat, delete, move); ``follow`` resolves the last component too
(read, write, list). Either is checked against the allowed roots *after* resolution, so neither
``../`` nor a symlink can lead outside them. These run on the file threads: resolving needs the
desktop user's right to look into each folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from agent.errors import InvalidArgument, PermissionDenied


class PathPolicy:
    def __init__(self, home: str, roots: Sequence[Path]) -> None:
        self.home = home
        self.roots = tuple(os.path.realpath(root) for root in roots)

    def absolute(self, raw: str) -> str:
        if not raw:
            raise InvalidArgument("path: empty", details={"field": "path"})
        if "\x00" in raw:
            raise InvalidArgument("path: contains a NUL byte", details={"field": "path"})
        if raw == "~" or raw.startswith("~/"):
            raw = self.home + raw[1:]
        path = raw if os.path.isabs(raw) else os.path.join(self.home, raw)
        return os.path.normpath(path)

    def locate(self, raw: str) -> str:
        """Absolute path with its folders resolved and its last component as given."""
        path = self.absolute(raw)
        parent, name = os.path.split(path)
        located = os.path.join(os.path.realpath(parent), name) if name else os.path.realpath(path)
        self.check(located, raw)
        return located

    def follow(self, raw: str) -> str:
        """Absolute path with every symlink resolved, the last one included."""
        located = self.locate(raw)
        real = os.path.realpath(located)
        if real != located:
            self.check(real, raw)
        return real

    def check(self, path: str, raw: str) -> None:
        if not self.roots:
            return
        for root in self.roots:
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return
        raise PermissionDenied(
            f"path {raw!r} resolves outside the folders this agent may touch",
            details={"path": raw, "allowed_roots": list(self.roots)},
        )
