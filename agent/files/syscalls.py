"""The Linux system calls the files service needs and Python's ``os`` lacks: ``openat2`` (path
resolution confined beneath a directory, Linux 5.6+), ``renameat2`` (atomic no-replace and
exchange) and ``fstatfs`` (to recognise pseudo filesystems whose sizes are not real).

Called through ``libc.syscall`` with ctypes; ctypes releases the GIL for the duration of the call.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform

# System call numbers (asm/unistd.h); openat2 has the same number on every architecture.
_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {"openat2": 437, "renameat2": 316},
    "aarch64": {"openat2": 437, "renameat2": 276},
}

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08

RENAME_NOREPLACE = 1 << 0

AT_FDCWD = -100

# statfs f_type values (linux/magic.h) of filesystems whose file sizes say nothing of their content.
PSEUDO_FILESYSTEMS = frozenset(
    {
        0x9FA0,  # proc
        0x62656572,  # sysfs
        0x64626720,  # debugfs
        0x74726163,  # tracefs
        0x73636673,  # securityfs
        0x62656570,  # configfs
        0x27E0EB,  # cgroup
        0x63677270,  # cgroup2
        0xCAFE4A11,  # bpf
        0x6E736673,  # nsfs
        0x65735546,  # fuse (sizes are whatever the daemon says)
    }
)

_libc = ctypes.CDLL(None, use_errno=True)


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


def _number(name: str) -> int:
    numbers = _NUMBERS.get(platform.machine())
    if numbers is None:
        raise OSError(errno.ENOSYS, f"{name} is not wired up for {platform.machine()}")
    return numbers[name]


def _raise(name: str, path: str | None = None) -> None:
    code = ctypes.get_errno()
    raise OSError(code, os.strerror(code), path) if path is not None else OSError(code, os.strerror(code))


def openat2(dir_fd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """``openat2(2)``: open ``path`` relative to ``dir_fd`` under the ``resolve`` restrictions."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & (os.O_CREAT | os.O_TMPFILE) else 0, resolve)
    fd = int(
        _libc.syscall(
            _number("openat2"),
            ctypes.c_int(dir_fd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
    )
    if fd < 0:
        _raise("openat2", path)
    return fd


def renameat2(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str, flags: int = 0) -> None:
    """``renameat2(2)``: with RENAME_NOREPLACE the rename fails with EEXIST instead of replacing."""
    result = _libc.syscall(
        _number("renameat2"),
        ctypes.c_int(src_dir_fd),
        ctypes.c_char_p(os.fsencode(src)),
        ctypes.c_int(dst_dir_fd),
        ctypes.c_char_p(os.fsencode(dst)),
        ctypes.c_uint(flags),
    )
    if result != 0:
        _raise("renameat2", dst)


def filesystem_type(fd: int) -> int:
    """The ``f_type`` of the filesystem ``fd`` lives on (``fstatfs``); its first field everywhere."""
    buffer = ctypes.create_string_buffer(256)  # larger than struct statfs on every architecture
    if _libc.fstatfs(ctypes.c_int(fd), buffer) != 0:
        _raise("fstatfs")
    return int(ctypes.c_long.from_buffer(buffer).value) & 0xFFFFFFFF
