"""What the middleware chain costs a request: the same app with and without it.

    python bench/bench_overhead.py [--runs N] [--no-write]

Two servers in their own processes, each the real app (``create_app``) around a fake desktop
(so no X server time is in the figure), one with its middleware chain (metrics, request id and
access log, Host/Origin guard, bearer auth, body type) and one with the chain cleared. A client in
this process sends the same request on one keep-alive connection to each in turns (raw HTTP/1.1
over a socket, so the client's own work is as small as it can be); the medians' difference is the
chain's cost. The servers run on one core and the client on the other (left to the scheduler,
the figures jumped between two modes from run to run, as the client woke on the server's core
or not). The access log goes to the server's stdout (/dev/null), as every line is written.
Target (issue 19): well under 0.1 ms a request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import write_section  # noqa: E402

TOKEN = "bench-token"
ROUTES = {
    "GET /desktop/cursor": ("GET", "/desktop/cursor", b""),
    "POST /desktop/click": ("POST", "/desktop/click", b'{"x": 400, "y": 300}'),
}
ROUNDS = 7
CLIENT_CPU, SERVER_CPU = 0, (os.cpu_count() or 1) - 1


async def serve(chain: bool) -> None:
    """One server: the real app around a fake desktop; prints its port, runs until killed."""
    from aiohttp import web

    from agent.api.app import create_app
    from agent.api.server import EdgeRunner, Limits
    from agent.config import Config
    from agent.services import Services
    from agent.supervision.logs import configure
    from tests.fakes import FakeDesktop

    os.sched_setaffinity(0, {SERVER_CPU})
    configure("info")
    token = Path(tempfile.mkdtemp(prefix="bench-overhead-")) / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    config = Config(token_file=token, display=":fake")
    app = create_app(config, Services(config=config, desktop=FakeDesktop()))
    if not chain:
        app.middlewares.clear()  # before the app is frozen: no middleware runs
    runner = EdgeRunner(app, limits=Limits.from_config(config), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(runner.addresses[0][1], file=sys.stderr, flush=True)
    await asyncio.Event().wait()


def client(port: int, method: str, path: str, body: bytes) -> Callable[[], None]:
    """One keep-alive connection sending the same request; each call waits for the whole answer."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    request = head.encode() + b"\r\n" + body

    def once() -> None:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        header, _, rest = data.partition(b"\r\n\r\n")
        if not header.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(header.decode(errors="replace"))
        length = int(header.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        while len(rest) < length:
            rest += sock.recv(65536)

    return once


def measure(runs: int) -> dict[str, Any]:
    os.sched_setaffinity(0, {CLIENT_CPU})
    servers = {}
    for name in ("chain", "bare"):
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve", name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        servers[name] = (process, int(process.stderr.readline()))
    try:
        results: dict[str, Any] = {}
        for label, (method, path, body) in ROUTES.items():
            calls = {name: client(port, method, path, body) for name, (_, port) in servers.items()}
            medians: dict[str, list[float]] = {name: [] for name in calls}
            cpu = dict.fromkeys(calls, 0.0)
            for call in calls.values():
                for _ in range(200):  # warm-up
                    call()
            for _ in range(ROUNDS):
                for name, call in calls.items():
                    samples = []
                    cpu_before = server_cpu(servers[name][0].pid)
                    for _ in range(runs):
                        started = time.perf_counter()
                        call()
                        samples.append(time.perf_counter() - started)
                    cpu[name] += server_cpu(servers[name][0].pid) - cpu_before
                    medians[name].append(statistics.median(samples))
            chain, bare = statistics.median(medians["chain"]), statistics.median(medians["bare"])
            requests = ROUNDS * runs
            results[label] = {
                "chain_us": round(chain * 1e6, 1),
                "bare_us": round(bare * 1e6, 1),
                "cost_us": round((chain - bare) * 1e6, 1),
                "chain_cpu_us": round(cpu["chain"] / requests * 1e6, 1),
                "bare_cpu_us": round(cpu["bare"] / requests * 1e6, 1),
                "cost_cpu_us": round((cpu["chain"] - cpu["bare"]) / requests * 1e6, 1),
            }
        return results
    finally:
        for process, _ in servers.values():
            process.kill()
            process.wait()
            if process.stderr is not None:
                process.stderr.close()


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) a server has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_results(results: dict[str, Any]) -> None:
    lines = [
        "## Per-request overhead: the middleware chain (bench/bench_overhead.py)",
        "",
        f"{results['when']}, {results['machine']}. The real app around a fake desktop, with and without "
        "its middleware chain (metrics, request id and access log, Host/Origin guard, bearer auth, "
        f"body type), each in its own process; raw HTTP/1.1 on one keep-alive connection, {ROUNDS} "
        f"alternating rounds of {results['runs']} requests, median of the rounds' medians.",
        "",
        "Latency is the client's (request sent to answer read); CPU is the server process's own "
        "(user + system, from /proc) over all the requests, which moves much less with the load of "
        "the machine's other work.",
        "",
        "| request | with the chain: latency / server CPU | without | the chain costs | target |",
        "|---|---|---|---|---|",
    ]
    for label, row in results["routes"].items():
        lines.append(
            f"| `{label}` | {row['chain_us']} / {row['chain_cpu_us']} us | {row['bare_us']} / "
            f"{row['bare_cpu_us']} us | {row['cost_us']} / {row['cost_cpu_us']} us | < 100 us |"
        )
    write_section("bench_overhead", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--serve", choices=["chain", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve == "chain"))
        return
    results = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}",
        "runs": args.runs,
        "routes": measure(args.runs),
    }
    print(json.dumps(results, indent=2))
    if not args.no_write:
        write_results(results)


if __name__ == "__main__":
    main()
