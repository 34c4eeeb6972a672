"""What one heartbeat says: identity, readiness and host load (psutil), as a JSON-ready dict.

The beat is the wire format the control plane reads (``../shared/API.md``, "Health and
heartbeat"); it is built in one place so its field names are defined once. Collecting host load
touches /proc and statfs: ``collect_host`` is blocking and runs in an executor, never on the
event loop.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from agent.supervision.readiness import ReadinessState


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is beating: fixed for the life of one agent process."""

    computer_id: str | None
    agent_version: str
    boot_id: str  # new on every start, so the control plane sees restarts
    advertise_url: str | None
    started_monotonic: float


def rfc3339_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _disk(path: str) -> dict[str, Any] | None:
    try:
        usage = psutil.disk_usage(path)
    except OSError:
        return None
    return {
        "path": path,
        "total": usage.total,
        "used": usage.used,
        "free": usage.free,
        "percent": usage.percent,
    }


def home_directory() -> str:
    """The desktop user's home (where files land), falling back to ours."""
    return os.environ.get("HOME") or str(Path.home())


def collect_host(home: str | None = None) -> dict[str, Any]:
    """Host and agent load. Blocking (reads /proc): call it from an executor.

    ``cpu_percent`` is measured since the previous call (psutil keeps the last sample), so the
    first beat after start reports 0.0 and every later one the average over one interval.
    """
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    disks = [d for d in (_disk("/"), _disk(home or home_directory())) if d is not None]
    if len(disks) == 2 and disks[0]["path"] == disks[1]["path"]:
        disks.pop()
    me = psutil.Process()
    with me.oneshot():
        rss = me.memory_info().rss
        threads = me.num_threads()
        children = me.children(recursive=True)
    running = sum(1 for child in children if _is_running(child))
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "cpu_percent": psutil.cpu_percent(interval=None),
        "cpu_count": psutil.cpu_count(),
        "load_average": [round(value, 2) for value in load],
        "memory": {
            "total": memory.total,
            "available": memory.available,
            "used": memory.used,
            "percent": memory.percent,
            "swap_used": swap.used,
        },
        "disk": disks,
        "process_count": len(psutil.pids()),
        "agent": {
            "pid": me.pid,
            "rss_bytes": rss,
            "threads": threads,
            "running_processes": running,
        },
    }


def _is_running(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def build_beat(
    identity: Identity,
    seq: int,
    state: ReadinessState | None,
    host: dict[str, Any] | None,
    *,
    now_monotonic: float,
    stopping: bool = False,
) -> dict[str, Any]:
    """The beat as sent. ``state`` None means no checks have run yet (status ``starting``)."""
    if stopping:
        status = "stopping"
    elif state is None:
        status = "starting"
    else:
        status = state.status.value
    checks = {} if state is None else state.check_fields()
    screen = None if state is None else state.screen_fields()
    beat: dict[str, Any] = {
        "computer_id": identity.computer_id,
        "agent_version": identity.agent_version,
        "boot_id": identity.boot_id,
        "seq": seq,
        "status": status,
        "ready": bool(state is not None and state.ready and not stopping),
        "checks": checks,
        "screen": screen,
        "uptime_s": round(now_monotonic - identity.started_monotonic, 3),
        "timestamp": rfc3339_now(),
        "advertise_url": identity.advertise_url,
    }
    if host is not None:
        agent = host.get("agent", {})
        beat.update({k: v for k, v in host.items() if k != "agent"})
        beat["agent"] = agent
    return beat
