"""The /ws command channel against HTTP keep-alive, on a real agent and Xvfb.

    python bench/bench_ws.py [--runs N]

Round trip of a click (send until the answer is read) over one /ws connection and over one
keep-alive HTTP connection, both from aiohttp in the same event loop, samples interleaved so both
see the same load; Python's http.client (a leaner HTTP client) as a second HTTP reference. Then
100 clicks: pipelined over /ws (all sent, then all answers read) against 100 sequential HTTP
requests. Target (issue 16): the /ws round trip <= HTTP's.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.session.devdesktop import DevDesktop  # noqa: E402
from bench.common import machine, write_section  # noqa: E402
from tests.conftest import RunningAgent, start_agent  # noqa: E402

CLICK = {"type": "click", "x": 640, "y": 360}


def ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


async def measure(agent: RunningAgent, runs: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {agent.token}"}
    ws_url = agent.url.replace("http://", "ws://") + "/ws"
    host, port = agent.url.removeprefix("http://").split(":")
    plain = http.client.HTTPConnection(host, int(port))
    plain_headers = {**headers, "Content-Type": "application/json"}
    body = json.dumps(CLICK)
    ws_samples: list[float] = []
    http_samples: list[float] = []
    plain_samples: list[float] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        ws = await session.ws_connect(ws_url)

        async def over_ws(request_id: int) -> None:
            await ws.send_str(json.dumps({**CLICK, "request_id": request_id}))
            answer = json.loads((await ws.receive()).data)
            assert answer["request_id"] == request_id and answer["success"], answer

        async def over_http() -> None:
            async with session.post(f"{agent.url}/desktop/click", json=CLICK) as response:
                assert response.status == 200, await response.text()
                await response.read()

        def over_plain() -> None:
            plain.request("POST", "/desktop/click", body, plain_headers)
            response = plain.getresponse()
            response.read()
            assert response.status == 200

        for i in range(10):  # warm-up: connections, encoders, caches
            await over_ws(i)
            await over_http()
            over_plain()
        for i in range(runs):
            started = time.perf_counter()
            await over_ws(i)
            ws_samples.append(time.perf_counter() - started)
            started = time.perf_counter()
            await over_http()
            http_samples.append(time.perf_counter() - started)
            started = time.perf_counter()
            over_plain()
            plain_samples.append(time.perf_counter() - started)

        burst_ws: list[float] = []
        burst_http: list[float] = []
        for _ in range(5):
            started = time.perf_counter()
            for i in range(100):
                await ws.send_str(json.dumps({**CLICK, "request_id": i}))
            for _ in range(100):
                assert json.loads((await ws.receive()).data)["success"]
            burst_ws.append(time.perf_counter() - started)
            started = time.perf_counter()
            for _ in range(100):
                await over_http()
            burst_http.append(time.perf_counter() - started)
        await ws.close()
    plain.close()
    return {
        "ws": ms(ws_samples),
        "http": ms(http_samples),
        "plain": ms(plain_samples),
        "burst_ws": ms(burst_ws),
        "burst_http": ms(burst_http),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    with DevDesktop() as desktop, tempfile.TemporaryDirectory() as tmp:
        env = dict(desktop.env, COMPUTER_AGENT_DISPLAY=desktop.display)
        agent = start_agent(env, Path(tmp), "--display", desktop.display)
        try:
            found = asyncio.run(measure(agent, args.runs))
        finally:
            agent.stop()
    ratio = found["ws"] / found["http"]
    markdown = f"""
## /ws command channel (bench/bench_ws.py)

Machine: {machine()}. A real `computer-agent serve` on Xvfb; medians of {args.runs} interleaved
samples. aiohttp is the client for both /ws and HTTP keep-alive (same event loop); Python's
http.client is a second, leaner HTTP client.

| what | /ws | HTTP keep-alive (aiohttp) | HTTP keep-alive (http.client) | target |
|---|---|---|---|---|
| click round trip | {found["ws"]} ms ({ratio:.2f}x HTTP) | {found["http"]} ms | {found["plain"]} ms | /ws <= HTTP |
| 100 clicks | {found["burst_ws"]} ms pipelined | {found["burst_http"]} ms sequential | | |
"""
    print(markdown)
    write_section("bench_ws", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
