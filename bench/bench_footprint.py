"""Footprint: where the idle agent's memory and start time go.

    python bench/bench_footprint.py [--starts N] [--no-write]

On a private Xvfb desktop, starts a real ``computer-agent serve`` ``--starts`` times (7) and reports
the medians of: start to ready (from spawning the process until ``GET /ready`` answers 200), the
RSS at idle right after ready, and the RSS at idle after a first screenshot and move (what
bench_core reports as idle RSS); with the RSS split into anonymous memory and mapped files.
Then the method, so a regression can be traced:

- ``-X importtime`` of one real start (``PYTHONPROFILEIMPORTTIME``): the slowest top-level
  imports of the serve path, cumulative;
- ``tracemalloc`` in a process that builds the same application on the same display and
  starts its services: the Python allocations alive at idle, by package and by line.

Bytecode: the agent runs with its .pyc files cached (``PYTHONPYCACHEPREFIX``, one unmeasured
warm-up start), as an installed package does; a shell with ``PYTHONDONTWRITEBYTECODE=1`` would
otherwise recompile every module on every start.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.session.devdesktop import DevDesktop  # noqa: E402
from bench.common import machine, previous_figure, with_previous, write_section  # noqa: E402
from bench.peer_cua import CuaServer  # noqa: E402
from tests.conftest import RunningAgent, start_agent  # noqa: E402

MIB = 1024 * 1024
PYCACHE = Path(tempfile.gettempdir()) / "computer-agent-bench-pycache"

# Run in a child process: the application built and started as `serve` does, then tracemalloc's view.
TRACE_SCRIPT = r"""
import asyncio, collections, json, sys, tracemalloc
tracemalloc.start(30)
from agent.api import lazy_client
lazy_client.defer()  # as `computer-agent` does
from agent.cli import build_parser
build_parser()
from aiohttp import web
from agent.api.app import create_app
from agent.config import load

def owner(frames):
    # Where a block was allocated (innermost frame first): module code and globals unmarshalled by
    # the import system are one group; everything else goes to the package whose code allocated it.
    top = frames[0].filename
    if "importlib" in top or top.startswith("<frozen"):
        return "module code objects (unmarshalled on import)"
    for frame in frames:
        name = frame.filename
        if "importlib" in name or name.startswith("<"):
            continue
        if "site-packages/" in name:
            return name.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        if "/agent/" in name:
            return "agent." + name.split("/agent/", 1)[1].split("/", 1)[0].removesuffix(".py")
        return "stdlib " + name.split("python3.11/", 1)[-1].split("/", 1)[0].removesuffix(".py")
    return "?"

async def main():
    config = load({"insecure_no_auth": "true", "port": "0", "display": sys.argv[1]})
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    await asyncio.sleep(1.0)
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    by_package = collections.Counter()
    for stat in snapshot.statistics("traceback"):
        by_package[owner(list(reversed(stat.traceback)))] += stat.size
    lines = [
        {"where": f"{s.traceback[0].filename.split('site-packages/')[-1]}:{s.traceback[0].lineno}", "kib": round(s.size / 1024)}
        for s in snapshot.statistics("lineno")[:12]
    ]
    total = sum(by_package.values())
    print(json.dumps({
        "total_mib": round(total / 2**20, 1),
        "by_package": [[name, round(size / 2**20, 2)] for name, size in by_package.most_common(15)],
        "by_line": lines,
    }))
    await runner.cleanup()

asyncio.run(main())
"""


# The frameworks an idle agent has loaded, no agent code: what any server built on them costs at
# idle (pydantic is not among them: the agent loads it with the first request beyond the probes).
FLOOR_SCRIPT = r"""
import asyncio, sys
from agent.api import lazy_client
lazy_client.defer()
from aiohttp import web
import prometheus_client
from Xlib.display import Display

async def main():
    display = Display(sys.argv[1])
    runner = web.AppRunner(web.Application())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print("ready", flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


def agent_env(desktop: DevDesktop, **extra: str) -> dict[str, str]:
    env = dict(desktop.env, PYTHONPYCACHEPREFIX=str(PYCACHE), **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def call(agent: RunningAgent, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    request = urllib.request.Request(
        agent.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {agent.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def memory(pid: int) -> dict[str, float]:
    """RSS and its parts (smaps_rollup: anonymous memory vs mapped files such as shared libraries)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Anonymous", "Pss"):
            fields[name] = int(rest.split()[0]) / 1024
    process = psutil.Process(pid)
    return {
        "rss": round(fields["Rss"], 1),
        "anon": round(fields.get("Anonymous", 0.0), 1),
        "files": round(fields["Rss"] - fields.get("Anonymous", 0.0), 1),
        "threads": process.num_threads(),
        "fds": process.num_fds(),
    }


def machinery_mapped(pid: int) -> float:
    """1 if pydantic's core library is mapped into the process (the operation machinery is
    loaded), else 0."""
    return float("_pydantic_core" in Path(f"/proc/{pid}/maps").read_text())


def one_start(
    desktop: DevDesktop, tmp: Path, *args: str, settle: float = 0.5, **extra_env: str
) -> tuple[float, dict[str, float], dict[str, float], Path]:
    """Start to ready, RSS 0.5 s after ready (and the probes), RSS ``settle`` s after a
    screenshot and a move."""
    tmp.mkdir()
    started = time.perf_counter()
    agent = start_agent(agent_env(desktop, **extra_env), tmp, "--display", desktop.display, *args)
    try:
        while call(agent, "GET", "/ready") != 200:
            time.sleep(0.002)
        ready = time.perf_counter() - started
        for probe in ("/health", "/metrics"):  # what monitors call on an agent nobody drives
            call(agent, "GET", probe)
        time.sleep(0.5)
        fresh = memory(agent.process.pid) | {"machinery": machinery_mapped(agent.process.pid)}
        call(agent, "GET", "/desktop/screenshot?format=jpeg")
        call(agent, "POST", "/desktop/move", {"x": 5, "y": 5})
        time.sleep(settle)
        after = memory(agent.process.pid) | {"machinery": machinery_mapped(agent.process.pid)}
    finally:
        agent.stop()
    return ready, fresh, after, agent.log_path


def cua_start(desktop: DevDesktop) -> tuple[float, float, float]:
    """cua's computer-server on the same desktop: start to ready (ms), idle RSS 0.5 s after ready
    and 0.5 s after a first screenshot and move (MiB, its whole process tree), as ours is measured."""
    with CuaServer(dict(desktop.env)) as cua:
        time.sleep(0.5)
        fresh = cua.rss_mib()
        cua.screenshot_png()
        cua.command("move_cursor", x=5, y=5)
        time.sleep(0.5)
        return cua.ready_s * 1000, fresh, cua.rss_mib()


def slowest_imports(log: Path, count: int = 15) -> list[tuple[str, float]]:
    """Top-level imports (and the agent's own modules) by cumulative time, from -X importtime."""
    rows = []
    for line in log.read_text(errors="replace").splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if found is None:
            continue
        cumulative, depth, name = int(found[1]), len(found[2]), found[3]
        if depth <= 2 or (name.startswith("agent.") and depth <= 4):
            rows.append((name, round(cumulative / 1000, 1)))
    return sorted(rows, key=lambda row: -row[1])[:count]


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def frameworks_floor(desktop: DevDesktop) -> dict[str, float]:
    """RSS of a process that serves an empty aiohttp app (without its client), holds an Xlib
    display and has imported prometheus_client, 0.5 s after."""
    process = subprocess.Popen(
        [sys.executable, "-c", FLOOR_SCRIPT, desktop.display],
        env=agent_env(desktop),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        time.sleep(0.5)
        return memory(process.pid)
    finally:
        process.kill()
        process.wait()


def trace_idle(desktop: DevDesktop) -> dict[str, Any]:
    env = agent_env(desktop)
    output = subprocess.run(
        [sys.executable, "-c", TRACE_SCRIPT, desktop.display],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def run(starts: int) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine(), "starts": starts}
    with tempfile.TemporaryDirectory() as tmp_name, DevDesktop() as desktop:
        tmp = Path(tmp_name)
        one_start(desktop, tmp / "warm")  # fills the bytecode cache; not measured
        readies, fresh, after = [], [], []
        for index in range(starts):
            ready, idle, used, _ = one_start(desktop, tmp / f"start{index}")
            readies.append(ready * 1000)
            fresh.append(idle)
            after.append(used)
        result["start_to_ready_ms"] = median(readies)
        result["start_to_ready_all_ms"] = [round(value) for value in readies]
        result["idle_fresh"] = {key: median([m[key] for m in fresh]) for key in fresh[0]}
        result["idle_after_use"] = {key: median([m[key] for m in after]) for key in after[0]}
        peer = [cua_start(desktop) for _ in range(max(1, starts // 2))]
        result["cua"] = {
            "starts": len(peer),
            "start_to_ready_ms": median([p[0] for p in peer]),
            "idle_fresh_rss": median([p[1] for p in peer]),
            "idle_after_use_rss": median([p[2] for p in peer]),
        }
        let_go = [
            one_start(desktop, tmp / f"let-go{index}", "--capture-idle-seconds", "2", settle=3.5)[2]
            for index in range(3)
        ]
        result["idle_after_let_go"] = {key: median([m[key] for m in let_go]) for key in let_go[0]}
        _, _, _, log = one_start(desktop, tmp / "importtime", PYTHONPROFILEIMPORTTIME="1")
        result["slowest_imports_ms"] = slowest_imports(log)
        result["tracemalloc_idle"] = trace_idle(desktop)
        result["frameworks_floor"] = {
            key: median([floor[key] for floor in (frameworks_floor(desktop) for _ in range(3))])
            for key in ("rss", "anon", "files")
        }
    return result


def beside_previous(value: float, unit: str, own_row: str, core_row: str) -> str:
    """Beside our own previous figure, or bench_core's on the first run of this bench."""
    if previous_figure("bench_footprint", own_row) is not None:
        return with_previous(value, unit, "bench_footprint", own_row)
    return with_previous(value, unit, "bench_core", core_row)


def _yes(median_flag: float) -> str:
    return "yes" if median_flag >= 0.5 else "no"


def ratio(ours: float, peer: float) -> str:
    return f"{ours / peer:.2f}x" if peer else "n/a"


def report(result: dict[str, Any]) -> str:
    fresh, used, cua = result["idle_fresh"], result["idle_after_use"], result["cua"]
    floor, gone = result["frameworks_floor"], result["idle_after_let_go"]
    imports = "\n".join(f"| `{name}` | {ms} ms |" for name, ms in result["slowest_imports_ms"])
    traced = result["tracemalloc_idle"]
    packages = "\n".join(f"| {name} | {mib} MiB |" for name, mib in traced["by_package"])
    return f"""## Footprint: idle memory and start time (bench/bench_footprint.py)

Machine: {result["machine"]}. A real `computer-agent serve` on Xvfb, started {result["starts"]} times
(bytecode cached, one warm-up start not counted), medians. Start to ready: from spawning the
process until `GET /ready` answers 200. Idle: 0.5 s after ready and a `GET /health` and
`GET /metrics` (the probes: answered without the operation machinery, pydantic and the models,
which the first other request loads), and 0.5 s after a first JPEG screenshot and a pointer
move (bench_core's idle RSS). Peer: cua's computer-server
(bench/peer_cua.py) on the same desktop, {result["cua"]["starts"]} starts, measured the same way (its
`GET /status`, its `screenshot` and `move_cursor` commands; RSS of its process tree). RSS = anonymous memory + mapped files
(shared libraries, bytecode-free code pages), from `/proc/PID/smaps_rollup`.

| what | ours | cua computer-server (same run) | ours / cua | target |
|---|---|---|---|---|
| start to ready | {beside_previous(result["start_to_ready_ms"], "ms", "start to ready", "start to ready")} (all: {result["start_to_ready_all_ms"]}) | {cua["start_to_ready_ms"]} ms | {ratio(result["start_to_ready_ms"], cua["start_to_ready_ms"])} | <= 500 ms |
| idle RSS after ready | {beside_previous(fresh["rss"], "MiB", "idle RSS after ready", "idle RSS")} (anonymous {fresh["anon"]}, files {fresh["files"]}); {fresh["threads"]:.0f} threads, {fresh["fds"]:.0f} fds; pydantic loaded: {_yes(fresh["machinery"])} | {cua["idle_fresh_rss"]} MiB | {ratio(fresh["rss"], cua["idle_fresh_rss"])} | <= 50 MiB, <= 0.75x |
| idle RSS after a screenshot and a move | {beside_previous(used["rss"], "MiB", "idle RSS after a screenshot", "idle RSS")} (anonymous {used["anon"]}, files {used["files"]}); {used["threads"]:.0f} threads, {used["fds"]:.0f} fds; pydantic loaded: {_yes(used["machinery"])} | {cua["idle_after_use_rss"]} MiB | {ratio(used["rss"], cua["idle_after_use_rss"])} | |
| idle RSS once the capture has let go (`--capture-idle-seconds 2`, 3.5 s after the screenshot; 30 s by default) | {gone["rss"]} MiB (anonymous {gone["anon"]}, files {gone["files"]}); {gone["threads"]:.0f} threads, {gone["fds"]:.0f} fds | | | |
| the frameworks an idle agent has loaded, alone: an empty aiohttp server (its client not loaded), an Xlib display, prometheus_client; no agent code | {floor["rss"]} MiB (anonymous {floor["anon"]}, files {floor["files"]}) | | {ratio(floor["rss"], cua["idle_fresh_rss"])} | |

Slowest imports of one real start (`PYTHONPROFILEIMPORTTIME=1`, cumulative, top level and the agent's packages):

| module | cumulative |
|---|---|
{imports}

Python allocations alive at idle (`tracemalloc`, the same application built and started on the
same display in a child process): {traced["total_mib"]} MiB, by allocation site: the import system's
unmarshalled module code, else the package whose code allocated the block:

| package | traced |
|---|---|
{packages}
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    result = run(args.starts)
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_section("bench_footprint", report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
