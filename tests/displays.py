"""X display numbers for tests: never hard-coded, always one nobody is using right now."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def free_display_number() -> int:
    """A display number nobody uses: no lock file, no socket file, no abstract socket (X servers
    in other mount namespaces show only there). Random, so parallel runs rarely race for one."""
    candidates = list(range(200, 1000))
    random.shuffle(candidates)
    for number in candidates:
        if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(f"\0/tmp/.X11-unix/X{number}".encode())
            except OSError:
                continue
        return number
    raise RuntimeError("no free X display number")


def unused_display() -> str:
    """A display name with no X server behind it: for agents the unit tier starts without one."""
    return f":{free_display_number()}"
