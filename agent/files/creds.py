"""File access with the desktop user's permissions, from a root agent, without forking.

Linux checks file permissions against a thread's *filesystem* uid/gid and supplementary groups,
and all three can be set per thread: ``setfsuid``/``setfsgid`` are per-thread system calls, and
the raw ``setgroups`` system call is too (the libc wrapper, which Python's ``os.setgroups`` uses,
would broadcast it to every thread of the agent). Switching the fsuid away from 0 also drops the
thread's CAP_DAC_OVERRIDE and friends. So file operations run on a small pool of threads that
have become the desktop user for file purposes: the kernel refuses exactly what that user could
not do, symlinks and races included, and new files belong to the user.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import os
import platform

from agent.session.user import DesktopUser

LOG = logging.getLogger(__name__)

# System call numbers (asm/unistd.h) for the architectures the VMs run on.
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {"setgroups": 116, "setfsuid": 122, "setfsgid": 123},
    "aarch64": {"setgroups": 159, "setfsuid": 151, "setfsgid": 152},
}


class CredentialError(RuntimeError):
    """The thread could not become the desktop user; file access must not go ahead as root."""


def become_user_thread(user: DesktopUser) -> None:
    """Make the calling thread access files as ``user`` (thread initializer)."""
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        raise CredentialError(f"per-thread credentials are not supported on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    groups = (ctypes.c_uint * max(1, len(user.groups)))(*user.groups)
    if libc.syscall(numbers["setgroups"], len(user.groups), groups) != 0:
        raise CredentialError(f"setgroups: {os.strerror(ctypes.get_errno())}")
    libc.syscall(numbers["setfsgid"], user.gid)
    libc.syscall(numbers["setfsuid"], user.uid)
    # setfs*id report no errors: read the values back (-1 changes nothing and returns the current).
    if libc.syscall(numbers["setfsuid"], -1) != user.uid or libc.syscall(numbers["setfsgid"], -1) != user.gid:
        raise CredentialError("setfsuid/setfsgid did not take effect")


def file_executor(user: DesktopUser, workers: int = 4) -> concurrent.futures.ThreadPoolExecutor:
    """Threads for blocking file I/O; as the desktop user when the agent is root."""
    if not user.switch:
        return concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="files")
    return concurrent.futures.ThreadPoolExecutor(
        workers, thread_name_prefix=f"files-{user.name}", initializer=become_user_thread, initargs=(user,)
    )
