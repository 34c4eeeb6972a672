"""``AsyncCalls``: the asyncio transport (aiohttp) under ``AsyncAgent``'s generated methods."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import IO, Any, TypeVar

import aiohttp
import orjson
from pydantic import BaseModel

from agent.client import calls
from agent.client.base import Target
from agent.client.calls import Prepared, Screenshot, Spec
from agent.client.errors import AgentError, AgentUnreachable
from agent.client.transfers import (
    CHUNK,
    AsyncDownload,
    AsyncSource,
    Progress,
    acounted,
    counted,
    remaining_size,
)

ResultT = TypeVar("ResultT", bound=BaseModel)


class AsyncCalls:
    """The asyncio transport (aiohttp); one ``ClientSession`` opened on first use."""

    _target: Target

    def __init__(self, target: Target) -> None:
        self._target = target
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._target.headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_read=self._target.timeout, sock_connect=30),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _url(self, prepared: Prepared) -> str:
        return self._target.url + prepared.target

    async def _open(self, prepared: Prepared, data: Any = None) -> aiohttp.ClientResponse:
        try:
            response = await self._client().request(
                prepared.method,
                self._url(prepared),
                data=prepared.body if data is None else data,
                headers=prepared.headers,
                skip_auto_headers=("Content-Type",) if data is None else (),
            )
        except aiohttp.ClientConnectionError as exc:
            raise AgentUnreachable(f"{self._target.url}: {exc}") from exc
        if response.status >= 400:
            body = await response.read()
            response.release()
            calls.raise_for_status(response.status, body, response.headers)
        return response

    async def _exchange(self, prepared: Prepared) -> tuple[bytes, Mapping[str, str]]:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._open(prepared)
            except AgentError as error:
                delay = self._target.should_retry(error, attempt, prepared.method)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                continue
            try:
                return await response.read(), response.headers
            finally:
                response.release()

    async def _json(self, spec: Spec, fields: Mapping[str, Any], model: type[ResultT]) -> ResultT:
        prepared = calls.prepare(spec, fields)
        data, _ = await self._exchange(prepared)
        return calls.json_result(prepared, data, model)

    async def _image(self, spec: Spec, fields: Mapping[str, Any]) -> Screenshot:
        prepared = calls.prepare(spec, fields)
        data, headers = await self._exchange(prepared)
        return calls.screenshot(prepared, data, headers)

    async def _text(self, spec: Spec, fields: Mapping[str, Any]) -> str:
        return (await self._exchange(calls.prepare(spec, fields)))[0].decode()

    async def _raw(self, spec: Spec, fields: Mapping[str, Any]) -> bytes:
        return (await self._exchange(calls.prepare(spec, fields)))[0]

    async def _document(self, spec: Spec, fields: Mapping[str, Any]) -> dict[str, Any]:
        document: dict[str, Any] = orjson.loads((await self._exchange(calls.prepare(spec, fields)))[0])
        return document

    def _events(
        self, spec: Spec, fields: Mapping[str, Any], model: type[BaseModel] | None
    ) -> AsyncIterator[Any]:
        prepared = calls.prepare(spec, fields)

        async def events() -> AsyncIterator[Any]:
            response = await self._open(prepared)
            try:
                # Split lines ourselves: aiohttp's line reader refuses lines over 128 KiB, and an
                # output event of escaped or base64 data may be longer.
                pending = b""
                async for chunk in response.content.iter_any():
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield calls.event(model, line)
                if pending.strip():
                    yield calls.event(model, pending)
            finally:
                response.release()

        return events()

    async def _download(self, spec: Spec, fields: Mapping[str, Any]) -> AsyncDownload:
        return AsyncDownload(await self._open(calls.prepare(spec, fields)))

    async def _upload(
        self,
        spec: Spec,
        fields: Mapping[str, Any],
        source: AsyncSource,
        model: type[ResultT],
        progress: Progress | None,
    ) -> ResultT:
        prepared = calls.prepare(spec, fields)
        prepared.headers["Content-Type"] = calls.OCTET_STREAM
        file: IO[bytes] | None = None
        try:
            body: Any
            if isinstance(source, bytes):
                body = source
            elif isinstance(source, os.PathLike):
                file = open(source, "rb")  # noqa: SIM115 (closed in finally)
                body = _file_chunks(file, remaining_size(file), progress)
                prepared.headers["Content-Length"] = str(remaining_size(file))
            elif hasattr(source, "read"):
                body = _file_chunks(source, remaining_size(source), progress)  # type: ignore[arg-type]
            elif hasattr(source, "__aiter__"):
                body = acounted(source, progress)  # type: ignore[arg-type]
            else:
                body = _iter_chunks(counted(source, progress))
            response = await self._open(prepared, body)
            try:
                return calls.parse(model, await response.read())
            finally:
                response.release()
        finally:
            if file is not None:
                file.close()


async def _file_chunks(file: IO[bytes], total: int | None, progress: Progress | None) -> AsyncIterator[bytes]:
    """A file's chunks, read off the event loop."""
    loop = asyncio.get_running_loop()
    done = 0
    while chunk := await loop.run_in_executor(None, file.read, CHUNK):
        done += len(chunk)
        if progress is not None:
            progress(done, total)
        yield chunk


async def _iter_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
