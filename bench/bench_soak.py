"""Soak under attack: mixed requests from many clients while slow-header connections pile up.

    python bench/bench_soak.py [--requests N] [--clients N] [--slow N] [--no-write]

On a private Xvfb desktop, a real agent serves ``--requests`` mixed requests (health, cursor,
screen size, window list, a JPEG screenshot, a pointer move, a short command) from ``--clients``
keep-alive clients, while ``--slow`` connections send a request's headers one byte every second
and reconnect whenever the agent closes them (issue 11, finding 4). Reported: errors seen by the
normal clients (target 0), latency p50/p99, the agent's RSS growth after warm-up (target
<= 10 MiB), its open descriptors, and how many slow connections it cut off.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.devdesktop import DevDesktop  # noqa: E402
from bench.common import machine, write_section  # noqa: E402
from tests.conftest import RunningAgent, start_agent  # noqa: E402

MIX: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/health", None),
    ("GET", "/desktop/cursor", None),
    ("GET", "/desktop/screen-size", None),
    ("GET", "/desktop/windows", None),
    ("GET", "/desktop/screenshot?format=jpeg&quality=50", None),
    ("POST", "/desktop/move", {"x": 100, "y": 100}),
    ("POST", "/exec", {"command": "true"}),
]


class Slowloris:
    """``count`` connections dripping header bytes; reconnects each one the agent closes."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.cut = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sock.setblocking(False)
        return sock

    def _run(self) -> None:
        socks = [self._open() for _ in range(self.count)]
        while not self._stop.wait(1.0):
            for index, sock in enumerate(socks):
                try:
                    sock.send(b"X")
                    while sock.recv(65536):
                        pass
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                sock.close()  # closed by the agent: count it and come back
                self.cut += 1
                with contextlib.suppress(OSError):  # retried at the next round
                    socks[index] = self._open()
        for sock in socks:
            sock.close()

    def __enter__(self) -> Slowloris:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_clients(agent: RunningAgent, requests: int, clients: int) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with agent.client() as http:
            for n in range(requests // clients + (index < requests % clients)):
                method, path, body = MIX[(index + n) % len(MIX)]
                started = time.perf_counter()
                try:
                    answer = http.request(method, path, json=body)
                    ok = answer.status_code == 200
                    problem = f"{method} {path}: {answer.status_code} {answer.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, problem = False, f"{method} {path}: {exc!r}"
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if not ok:
                        errors.append(problem)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return latencies, errors


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with DevDesktop() as desktop:
        agent = start_agent(
            dict(desktop.env),
            Path(tempfile.mkdtemp(prefix="bench-soak-")),
            "--display",
            desktop.display,
            "--http-header-timeout",
            "5",
        )
        try:
            process = psutil.Process(agent.process.pid)
            run_clients(agent, args.clients * 20, args.clients)  # warm-up
            rss_before = process.memory_info().rss
            with Slowloris(int(agent.url.rsplit(":", 1)[1]), args.slow) as slow:
                started = time.perf_counter()
                latencies, errors = run_clients(agent, args.requests, args.clients)
                wall = time.perf_counter() - started
                fds_under_attack = process.num_fds()
            rss_after = process.memory_info().rss
            cut = slow.cut
        finally:
            agent.stop()
    quantiles = statistics.quantiles(latencies, n=100)
    results = {
        "requests": len(latencies),
        "clients": args.clients,
        "slow_connections": args.slow,
        "errors": len(errors),
        "first_errors": errors[:5],
        "p50_ms": round(quantiles[49] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "rss_growth_mib": round((rss_after - rss_before) / 2**20, 2),
        "fds_under_attack": fds_under_attack,
        "slow_connections_cut": cut,
    }
    print(json.dumps(results, indent=1))
    if not args.no_write:
        write_section(
            "bench_soak",
            f"""## Soak under a slowloris (bench/bench_soak.py)

{machine()}

{results["requests"]} mixed requests from {args.clients} keep-alive clients while {args.slow}
connections drip header bytes (header timeout 5 s, reconnecting when cut).

| errors | p50 | p99 | req/s | RSS growth after warm-up | open fds under attack | slow connections cut |
|---|---|---|---|---|---|---|
| {results["errors"]} | {results["p50_ms"]} ms | {results["p99_ms"]} ms | {results["requests_per_s"]} | {results["rss_growth_mib"]} MiB | {fds_under_attack} | {cut} |
""",
        )
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
