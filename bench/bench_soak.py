"""Soak: mixed requests from many clients while slow-header connections try to starve the agent.

    python bench/bench_soak.py [--requests N] [--clients C] [--slow S] [--no-write]

Starts a private desktop (Xvfb + window manager) with an xterm that swallows what is typed, a
real ``computer-agent serve``, then runs at once:

- ``--clients`` (32) keep-alive clients sending ``--requests`` (10,000) mixed requests in all:
  screenshots in every format and at half scale, clicks, typing, the window list, the
  accessibility tree and ``/exec``;
- ``--slow`` (200) slowloris connections, each sending one byte of a request header every
  few seconds, reconnecting whenever the agent closes one.

Reports the normal clients' errors (target 0), their p50 and p99 latency, and the agent's
RSS, open descriptors and threads after the first 500 requests (warm-up) and at the end
(target: RSS grows at most 10 MiB) and once idle again after the load, plus how many slow
connections the agent cut. The result replaces this benchmark's section of bench/RESULTS.md and is printed as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.session.devdesktop import DevDesktop  # noqa: E402
from bench.common import machine, write_section  # noqa: E402
from tests.conftest import start_agent  # noqa: E402

MIB = 1024 * 1024
WARMUP = 500
MAX_GROWTH_MIB = 10.0  # RSS at the end against RSS after the warm-up
IDLE_AFTER_S = 3.0  # idle time after the load before the last reading (the heap trim runs at 1 Hz)

# (method, path, JSON body or None): what an agent loop sends, screenshots in every shape.
MIX: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/desktop/screenshot?format=png", None),
    ("POST", "/desktop/click", {"x": 300, "y": 200}),
    ("GET", "/desktop/screenshot?format=jpeg&quality=75", None),
    ("POST", "/desktop/type", {"text": "soak test 123 é"}),
    ("GET", "/desktop/windows", None),
    ("GET", "/desktop/screenshot?format=webp", None),
    ("POST", "/exec", {"command": ["true"]}),
    ("GET", "/desktop/screenshot?format=jpeg&scale=0.5", None),
    ("GET", "/desktop/accessibility-tree?max_depth=3", None),
    ("POST", "/desktop/move", {"x": 400, "y": 300}),
]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    done: int = 0
    warm: dict[str, float] = field(default_factory=dict)
    slow_cut: int = 0
    slow_opened: int = 0


def footprint(process: psutil.Process) -> dict[str, float]:
    return {
        "rss_mib": round(process.memory_info().rss / MIB, 1),
        "fds": process.num_fds(),
        "threads": process.num_threads(),
    }


async def client(
    session: aiohttp.ClientSession, url: str, requests: Any, tally: Tally, agent: psutil.Process
) -> None:
    for method, path, body in requests:
        started = time.perf_counter()
        try:
            async with session.request(method, url + path, json=body) as answer:
                await answer.read()
                if answer.status >= 300:
                    tally.errors.append(f"{method} {path}: {answer.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.errors.append(f"{method} {path}: {exc!r}")
        tally.latencies.append(time.perf_counter() - started)
        tally.done += 1
        if tally.done == WARMUP:
            tally.warm = footprint(agent)


async def slow_header(host: str, port: int, stop: asyncio.Event, tally: Tally, interval: float) -> None:
    """Open a request and send its header one byte at a time; reconnect when the agent cuts it."""
    line = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4096
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(interval)
            continue
        tally.slow_opened += 1
        try:
            for byte in line:
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                    return
                except TimeoutError:
                    pass
                if reader.at_eof():
                    break
            tally.slow_cut += 1
        except (ConnectionError, OSError):
            tally.slow_cut += 1
        finally:
            writer.close()


async def soak(url: str, token: str, agent: psutil.Process, args: argparse.Namespace) -> dict[str, Any]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    tally, stop = Tally(), asyncio.Event()
    slow = [
        asyncio.create_task(slow_header(host, int(port), stop, tally, args.slow_interval))
        for _ in range(args.slow)
    ]
    await asyncio.sleep(1)
    before = footprint(agent)
    requests = iter([item for _, item in zip(range(args.requests), cycle(MIX), strict=False)])
    connector = aiohttp.TCPConnector(limit=args.clients)
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=60)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:
        await asyncio.gather(*(client(session, url, requests, tally, agent) for _ in range(args.clients)))
    wall = time.perf_counter() - started
    after = footprint(agent)
    stop.set()
    await asyncio.gather(*slow, return_exceptions=True)
    await asyncio.sleep(IDLE_AFTER_S)  # the agent idle again: what it keeps after a benchmark
    idle_after = footprint(agent)
    ordered = sorted(tally.latencies)
    return {
        "requests": tally.done,
        "clients": args.clients,
        "slow_connections": args.slow,
        "errors": len(tally.errors),
        "first_errors": tally.errors[:10],
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
        "requests_per_s": round(tally.done / wall, 1),
        "before": before,
        "after_warmup": tally.warm,
        "end": after,
        "idle_after_load": idle_after,
        "rss_growth_after_warmup_mib": round(after["rss_mib"] - tally.warm.get("rss_mib", 0.0), 1),
        "slow_opened": tally.slow_opened,
        "slow_cut_by_agent": tally.slow_cut,
    }


def report(result: dict[str, Any]) -> str:
    warm, end = result["after_warmup"], result["end"]
    return f"""## Soak: mixed load beside slow-header connections (bench/bench_soak.py)

Machine: {machine()}. A real `computer-agent serve` on Xvfb (xterm in front), {result["clients"]}
keep-alive clients sending {result["requests"]} mixed requests (screenshots PNG/JPEG/WebP/half
scale, clicks, moves, typing, windows, accessibility tree, `/exec`) while {result["slow_connections"]}
connections send their request header one byte at a time.

| what | measured | target |
|---|---|---|
| errors seen by the normal clients | {result["errors"]} | 0 |
| latency p50 / p99 | {result["p50_ms"]} ms / {result["p99_ms"]} ms | |
| throughput | {result["requests_per_s"]} requests/s | |
| RSS idle, before the load | {result["before"]["rss_mib"]} MiB ({result["before"]["fds"]} descriptors, {result["before"]["threads"]} threads) | |
| RSS after {WARMUP} requests -> end | {warm.get("rss_mib")} -> {end["rss_mib"]} MiB ({result["rss_growth_after_warmup_mib"]:+.1f}) | <= +{MAX_GROWTH_MIB:g} MiB |
| RSS {IDLE_AFTER_S:g} s after the load (idle again) | {result["idle_after_load"]["rss_mib"]} MiB ({result["idle_after_load"]["fds"]} descriptors, {result["idle_after_load"]["threads"]} threads) | |
| open descriptors after warm-up -> end | {warm.get("fds")} -> {end["fds"]} | flat |
| threads after warm-up -> end | {warm.get("threads")} -> {end["threads"]} | flat |
| slow-header connections opened / cut by the agent | {result["slow_opened"]} / {result["slow_cut_by_agent"]} | |
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--slow-interval", type=float, default=2.0, help="seconds between header bytes")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with DevDesktop() as desktop:
        sink = subprocess.Popen(
            ["xterm", "-geometry", "80x24+100+100", "-e", "sh", "-c", "cat > /dev/null"], env=desktop.env
        )
        agent = start_agent(
            dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display),
            Path(tempfile.mkdtemp(prefix="bench-soak-")),
            "--display",
            desktop.display,
        )
        try:
            time.sleep(1)
            result = asyncio.run(soak(agent.url, agent.token, psutil.Process(agent.process.pid), args))
        finally:
            agent.stop()
            sink.terminate()
            sink.wait(timeout=5)
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_section("bench_soak", report(result))
    return 0 if result["errors"] == 0 and result["rss_growth_after_warmup_mib"] <= MAX_GROWTH_MIB else 1


if __name__ == "__main__":
    raise SystemExit(main())
