"""What the clients add: the SDK's per-call overhead over raw HTTP keep-alive for a click, and
the MCP tool-call round trip for a click (streamable HTTP /mcp and stdio ``computer-agent mcp``).

    python bench/bench_clients.py [--runs N]

On a private Xvfb desktop with a real agent. Raw HTTP is one ``http.client`` keep-alive
connection sending the same body a hand-written client would; the SDK call is ``Agent.click``
(and ``AsyncAgent.click`` against raw aiohttp). Raw and SDK calls alternate, so drift of this
shared machine hits both alike; medians. Target (issue 17): the SDK adds <= 0.1 ms to a click.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import httpx2  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from agent.client import Agent, AsyncAgent, calls  # noqa: E402
from agent.client._operations import _SPECS  # noqa: E402
from agent.models.base import Success  # noqa: E402
from agent.session.devdesktop import DevDesktop  # noqa: E402
from bench.common import machine, median_ms, write_section  # noqa: E402
from tests.conftest import AGENT_BIN, RunningAgent, start_agent  # noqa: E402

CLICK = {"x": 640, "y": 360}


def alternate(pairs: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Each callable once per round, in turn; per-callable samples in seconds."""
    samples: dict[str, list[float]] = {name: [] for name in pairs}
    for _ in range(10):
        for fn in pairs.values():
            fn()
    for _ in range(runs):
        for name, fn in pairs.items():
            started = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - started)
    return samples


async def aalternate(pairs: dict[str, Callable[[], Awaitable[object]]], runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in pairs}
    for _ in range(10):
        for fn in pairs.values():
            await fn()
    for _ in range(runs):
        for name, fn in pairs.items():
            started = time.perf_counter()
            await fn()
            samples[name].append(time.perf_counter() - started)
    return samples


def bench_sync(agent: RunningAgent, runs: int) -> dict[str, float]:
    host, port = agent.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port))
    headers = {"Authorization": f"Bearer {agent.token}", "Content-Type": "application/json"}

    def raw() -> None:
        connection.request("POST", "/desktop/click", json.dumps(CLICK), headers)
        response = connection.getresponse()
        if response.status != 200 or json.loads(response.read()) != {"success": True}:
            raise RuntimeError("click failed")

    with Agent(agent.url, token=agent.token) as sdk:
        samples = alternate({"raw": raw, "sdk": lambda: sdk.click(640, 360)}, runs)
    connection.close()
    spec = _SPECS["click"]

    def client_work() -> None:
        prepared = calls.prepare(spec, {"x": 640, "y": 360, "button": None, "modifiers": None})
        calls.json_result(prepared, b'{"success":true}', Success)

    client_side = alternate({"sdk_only": client_work}, runs * 10)
    deltas = [s - r for s, r in zip(samples["sdk"], samples["raw"], strict=True)]
    return {
        "raw_ms": median_ms(samples["raw"]),
        "sdk_ms": median_ms(samples["sdk"]),
        "added_ms": round(statistics.median(deltas) * 1000, 3),
        "client_side_ms": median_ms(client_side["sdk_only"]),
    }


async def bench_async(agent: RunningAgent, runs: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {agent.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        AsyncAgent(agent.url, token=agent.token) as sdk,
    ):

        async def raw() -> None:
            async with session.post(f"{agent.url}/desktop/click", json=CLICK) as response:
                if response.status != 200:
                    raise RuntimeError("click failed")
                await response.read()

        async def typed() -> None:
            await sdk.click(640, 360)

        samples = await aalternate({"raw": raw, "sdk": typed}, runs)
    deltas = [s - r for s, r in zip(samples["sdk"], samples["raw"], strict=True)]
    return {
        "raw_ms": median_ms(samples["raw"]),
        "sdk_ms": median_ms(samples["sdk"]),
        "added_ms": round(statistics.median(deltas) * 1000, 3),
    }


async def bench_mcp(agent: RunningAgent, tmp: Path, runs: int) -> dict[str, float]:
    results: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {agent.token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(f"{agent.url}/mcp", http_client=http)) as client,
    ):

        async def over_http() -> None:
            if (await client.call_tool("click", CLICK)).is_error:
                raise RuntimeError("click failed")

        results["http_ms"] = median_ms((await aalternate({"http": over_http}, runs))["http"])
    token_file = tmp / "token"
    token_file.write_text(agent.token)
    parameters = StdioServerParameters(
        command=str(AGENT_BIN),
        args=["mcp", "--url", agent.url, "--token-file", str(token_file)],
        env={"PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))},
    )
    async with Client(parameters) as client:

        async def over_stdio() -> None:
            if (await client.call_tool("click", CLICK)).is_error:
                raise RuntimeError("click failed")

        results["stdio_ms"] = median_ms((await aalternate({"stdio": over_stdio}, runs))["stdio"])
    return results


def report(results: dict[str, Any], runs: int) -> str:
    sync, asyn, mcp = results["sync"], results["async"], results["mcp"]
    return f"""## Clients: SDK overhead and MCP round trip (bench/bench_clients.py)

Machine: {results["machine"]}. A real `computer-agent serve` on Xvfb; a click at (640, 360); raw
and SDK calls alternate ({runs} rounds), medians; "added" is the median of the per-round
differences.

| what | client | raw HTTP keep-alive (same run) | added | target |
|---|---|---|---|---|
| click, `Agent.click` (http.client) | {sync["sdk_ms"]} ms | {sync["raw_ms"]} ms | {sync["added_ms"]} ms | <= 0.1 ms |
| click, `AsyncAgent.click` (aiohttp) | {asyn["sdk_ms"]} ms | aiohttp session {asyn["raw_ms"]} ms | {asyn["added_ms"]} ms | |
| the SDK's own work per click (build request, parse answer; no I/O) | {sync["client_side_ms"]} ms | | | |
| MCP `tools/call click`, streamable HTTP `/mcp` (official client) | {mcp["http_ms"]} ms | {sync["raw_ms"]} ms | | |
| MCP `tools/call click`, stdio `computer-agent mcp` (official client) | {mcp["stdio_ms"]} ms | {sync["raw_ms"]} ms | | |
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp_name, DevDesktop() as desktop:
        tmp = Path(tmp_name)
        agent = start_agent(dict(desktop.env), tmp, "--display", desktop.display)
        try:
            results["sync"] = bench_sync(agent, args.runs)
            results["async"] = asyncio.run(bench_async(agent, args.runs))
            results["mcp"] = asyncio.run(bench_mcp(agent, tmp, max(50, args.runs // 3)))
        finally:
            agent.stop()
    print(json.dumps(results, indent=1))
    write_section("bench_clients", report(results, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
