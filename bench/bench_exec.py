"""Exec and files benchmarks against a real ``computer-agent serve``, beside a floor in the same run.

    python bench/bench_exec.py [--runs N]

Measures (medians):
- ``/exec`` of ``true`` over one keep-alive HTTP connection, against ``subprocess.run(["true"])``
  in this process (the floor: what spawning alone costs here);
- streaming throughput of ``/exec/stream`` (NDJSON) for a command writing 256 MiB of text;
- file download throughput of ``GET /files`` for a 256 MiB file, against reading it locally.

Targets (issue 5): /exec true <= 3 ms, stream >= 100 MB/s, download >= 300 MB/s. The results
replace this benchmark's section of bench/RESULTS.md and are printed as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, with_previous, write_section  # noqa: E402

AGENT_BIN = Path(sys.executable).parent / "computer-agent"
MB = 1_000_000
MIB = 1024 * 1024


class Agent:
    def __init__(self, workdir: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        token_file = workdir / "token"
        token_file.write_text(self.token)
        token_file.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTER_AGENT_")}
        self.process = subprocess.Popen(
            [str(AGENT_BIN), "serve", "--port", "0", "--token-file", str(token_file), "--display", ":93"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if '"listening"' in line:
                url = json.loads(line)["url"]
                break
        else:
            raise RuntimeError("the agent did not start")
        # Keep reading its log (one line per request) so the pipe never fills and blocks it.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()  # type: ignore[union-attr]
        self.host, self.port = host, int(port)

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json", **extra}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def bench_exec_true(agent: Agent, runs: int) -> dict[str, float]:
    """Floor and HTTP calls interleaved, so both see the same load from whatever else runs."""
    conn = agent.connect()
    headers = agent.headers()

    def call(body: str) -> Callable[[], None]:
        def one() -> None:
            conn.request("POST", "/exec", body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            if answer.status != 200 or json.loads(data).get("exit_code") != 0:
                raise RuntimeError(data.decode())

        return one

    measured: dict[str, Callable[[], object]] = {
        "floor": lambda: subprocess.run(["true"], capture_output=True, check=True),
        "argv": call(json.dumps({"command": ["true"]})),
        "bash": call(json.dumps({"command": "true"})),
    }
    samples: dict[str, list[float]] = {name: [] for name in measured}
    for round_ in range(runs + 20):
        for name, fn in measured.items():
            started = time.perf_counter()
            fn()
            if round_ >= 20:  # warm-up rounds are not counted
                samples[name].append(time.perf_counter() - started)
    conn.close()
    argv = sorted(samples["argv"])
    return {
        "exec_true_ms": statistics.median(argv) * 1000,
        "exec_true_p95_ms": argv[int(runs * 0.95) - 1] * 1000,
        "exec_bash_true_ms": statistics.median(samples["bash"]) * 1000,
        "subprocess_run_true_ms": statistics.median(samples["floor"]) * 1000,
    }


def bench_stream(agent: Agent, runs: int, size: int = 256 * MIB) -> dict[str, float]:
    command = f"yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c {size}"
    rates = []
    for _ in range(runs):
        conn = agent.connect()
        started = time.perf_counter()
        conn.request("POST", "/exec/stream", body=json.dumps({"command": command}), headers=agent.headers())
        answer = conn.getresponse()
        output = 0
        last = b""
        pending = b""
        # Big reads and orjson: a line-by-line http.client reader would measure the client.
        while block := answer.read(4 * MIB):
            lines = (pending + block).split(b"\n")
            pending = lines.pop()
            for line in lines:
                last = line
                if line.startswith(b'{"type":"stdout"'):
                    output += len(orjson.loads(line)["data"])
        elapsed = time.perf_counter() - started
        conn.close()
        if output != size or b'"exit_code":0' not in last:
            raise RuntimeError(f"stream delivered {output} bytes, last event {last[:200]!r}")
        rates.append(output / elapsed / MB)
    floor = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(["bash", "-c", command], stdout=subprocess.DEVNULL, check=True)
        floor.append(size / (time.perf_counter() - started) / MB)
    return {"stream_mb_s": statistics.median(rates), "stream_floor_mb_s": statistics.median(floor)}


def bench_download(agent: Agent, runs: int, workdir: Path, size: int = 256 * MIB) -> dict[str, float]:
    path = workdir / "download.bin"
    with path.open("wb") as out:
        for _ in range(size // MIB):
            out.write(os.urandom(MIB))
    rates = []
    for _ in range(runs):
        conn = agent.connect()
        started = time.perf_counter()
        conn.request("GET", f"/files?path={path}", headers=agent.headers())
        answer = conn.getresponse()
        received = 0
        while block := answer.read(MIB):
            received += len(block)
        elapsed = time.perf_counter() - started
        conn.close()
        if received != size:
            raise RuntimeError(f"downloaded {received} of {size} bytes")
        rates.append(size / elapsed / MB)
    floor = []
    for _ in range(runs):
        started = time.perf_counter()
        with path.open("rb") as src:
            while src.read(MIB):
                pass
        floor.append(size / (time.perf_counter() - started) / MB)
    path.unlink()
    return {"download_mb_s": statistics.median(rates), "download_floor_mb_s": statistics.median(floor)}


def write_results(results: dict[str, Any]) -> None:
    """Replace this benchmark's section of bench/RESULTS.md (the format the other benchmarks use)."""
    r = results
    markdown = "\n".join(
        [
            "## Exec and files (bench/bench_exec.py)",
            "",
            f"Machine: {r['machine']}. HTTP keep-alive to a real `computer-agent serve`, medians "
            f"({r['exec_runs']} exec calls interleaved with the floor; {r['runs']} throughput runs).",
            "",
            "| what | agent | peer (same run) | target |",
            "|---|---|---|---|",
            f"| `/exec` of `true` (argv list) | {with_previous(round(r['exec_true_ms'], 3), 'ms', 'bench_exec', '`/exec` of `true` (argv')} (p95 {r['exec_true_p95_ms']:.3f} ms) "
            f'| `subprocess.run(["true"])` {r["subprocess_run_true_ms"]:.3f} ms | <= 3 ms |',
            f"| `/exec` of `true` (bash command line) | {r['exec_bash_true_ms']:.3f} ms | | |",
            f"| `/exec/stream` throughput (NDJSON, 256 MiB of text) | {r['stream_mb_s']:.0f} MB/s "
            f"| the command to /dev/null {r['stream_floor_mb_s']:.0f} MB/s | >= 100 MB/s |",
            f"| `GET /files` download (256 MiB) | {r['download_mb_s']:.0f} MB/s "
            f"| local read {r['download_floor_mb_s']:.0f} MB/s | >= 300 MB/s |",
        ]
    )
    write_section("bench_exec", markdown)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of the throughput measurements")
    parser.add_argument("--exec-runs", type=int, default=300, help="calls of /exec true")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as tmp:
        agent = Agent(Path(tmp))
        try:
            results: dict[str, Any] = {
                "machine": machine(),
                "runs": args.runs,
                "exec_runs": args.exec_runs,
            }
            results.update(bench_exec_true(agent, args.exec_runs))
            results.update(bench_stream(agent, args.runs))
            results.update(bench_download(agent, args.runs, Path(tmp)))
        finally:
            agent.stop()
    print(json.dumps(results, indent=2))
    if not args.no_write:
        write_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
