"""A small /ws client for the tests: sends messages, files answers by request_id and events by id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.conftest import RunningAgent


class WsClient:
    """Reads every frame on a task: answers by request_id (an image header gets the binary frame
    that follows it as ``binary``), events in arrival order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.answers: dict[Any, dict[str, Any]] = {}
        self.answer_order: list[Any] = []
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        waiting_binary: dict[str, Any] | None = None
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                assert waiting_binary is not None, "a binary frame without a header before it"
                waiting_binary["binary_data"] = message.data
                waiting_binary = None
            elif message.type == aiohttp.WSMsgType.TEXT:
                assert waiting_binary is None, "a text frame where the binary frame was announced"
                data = json.loads(message.data)
                if "request_id" in data:
                    self.answers[data["request_id"]] = data
                    self.answer_order.append(data["request_id"])
                    if "binary" in data:
                        waiting_binary = data
                else:
                    self.events.append(data)
            self._changed.set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 10, what: str = "it") -> Any:
        async def loop() -> Any:
            while True:
                value = condition()
                if value:
                    return value
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{what} did not come within {timeout} s; events: {self.events[-10:]}"
            ) from None

    async def request(self, message: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        request_id = message["request_id"]
        await self.send(message)
        answer: dict[str, Any] = await self.wait_for(
            lambda: self.answers.get(request_id), timeout, f"the answer to {request_id}"
        )
        return answer

    async def event(
        self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 10
    ) -> dict[str, Any]:
        found: dict[str, Any] = await self.wait_for(
            lambda: next((e for e in self.events if predicate(e)), None), timeout, what
        )
        return found

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


def ws_url(agent: RunningAgent, query: str = "") -> str:
    return agent.url.replace("http://", "ws://") + "/ws" + (f"?{query}" if query else "")


def bearer(agent: RunningAgent) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent.token}"}
