"""The HTTP under the generated methods: ``SyncCalls`` (stdlib http.client); ``AsyncCalls``
(aiohttp) is in ``agent.client.aio``.

The sync client uses the standard library's ``http.client``, one keep-alive connection per
thread: no new dependency, and the least work per call (a click's added cost is measured in
bench/bench_clients.py against raw HTTP on the same kind of connection). A connection the server
closed while idle is reopened and the request sent once more. A read (GET) answered 503 is
retried (``retries`` times, waiting the Retry-After the server asks, at most ``max_retry_delay``);
an action is not (it may have run in part), nor is BROWSER_CLOSED (a new browser is another page).
Streams and downloads get a connection of their own, closed when they end.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

import orjson
from multidict import CIMultiDict
from pydantic import BaseModel

from agent.client import calls
from agent.client.calls import Prepared, Screenshot, Spec
from agent.client.errors import AgentError, AgentUnreachable
from agent.client.transfers import (
    CHUNK,
    CountingReader,
    Download,
    Progress,
    Source,
    counted,
    remaining_size,
)

ResultT = TypeVar("ResultT", bound=BaseModel)
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
DEFAULT_TIMEOUT = 120.0


class Target:
    """Where the agent is and how to authenticate: shared by both clients."""

    def __init__(
        self, url: str, token: str | None, timeout: float, retries: int, max_retry_delay: float
    ) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self.retries = retries
        self.max_retry_delay = max_retry_delay

    def should_retry(self, error: AgentError, attempt: int, method: str) -> float | None:
        """Seconds to wait before retrying a ``method`` request after ``error``, or None: raise
        it. Only a 503 to a read is retried, never BROWSER_CLOSED (``calls.retryable``)."""
        if error.status != 503 or attempt > self.retries or not calls.retryable(method, error.code):
            return None
        return calls.retry_delay(attempt, error.retry_after, self.max_retry_delay)


class SyncCalls:
    """The blocking transport; ``Agent`` adds the constructor and the hand-written helpers."""

    _target: Target

    def __init__(self, target: Target) -> None:
        self._target = target
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()  # every thread's, for close()

    # ----- connections ----------------------------------------------------------------------------

    def _new_connection(self) -> http.client.HTTPConnection:
        target = self._target
        kind = http.client.HTTPSConnection if target.https else http.client.HTTPConnection
        return kind(target.host, target.port, timeout=target.timeout, blocksize=CHUNK)

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        connection = self._local.connection = self._new_connection()
        with self._lock:
            self._open.add(connection)
        return connection, False

    def close(self) -> None:
        """Close the keep-alive connections of every thread that used this client."""
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            connection.close()
        self._local = threading.local()

    def _send(
        self, prepared: Prepared, body: Any = None, *, own: bool = False, chunked: bool = False
    ) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        """Send ``prepared`` (``body`` replaces its bytes: a file or iterator) and read the status."""
        headers = {**self._target.headers, **prepared.headers}
        content = prepared.body if body is None else body
        for attempt in (1, 2):
            if own:
                connection, reused = self._new_connection(), False
            else:
                connection, reused = self._connection()
            try:
                connection.request(
                    prepared.method,
                    self._target.prefix + prepared.target,
                    content,
                    headers,
                    encode_chunked=chunked,
                )
                return connection.getresponse(), connection
            except STALE as exc:
                self._drop(connection, own)
                if reused and attempt == 1 and body is None:
                    continue  # the server closed the idle connection: the request never arrived
                raise AgentUnreachable(f"{self._target.url}: {exc or type(exc).__name__}") from exc
            except OSError as exc:
                self._drop(connection, own)
                raise AgentUnreachable(f"{self._target.url}: {exc}") from exc
        raise AssertionError("unreachable")

    def _drop(self, connection: http.client.HTTPConnection, own: bool) -> None:
        connection.close()
        if not own:
            self._local.connection = None
            with self._lock:
                self._open.discard(connection)

    def _exchange(self, prepared: Prepared) -> tuple[bytes, CIMultiDict[str]]:
        """One request with a JSON or empty body: its answer, errors raised, 503s retried."""
        attempt = 0
        while True:
            attempt += 1
            response, connection = self._send(prepared)
            try:
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop(connection, False)
                raise AgentUnreachable(f"{self._target.url}: {exc}") from exc
            headers = CIMultiDict(response.getheaders())
            try:
                calls.raise_for_status(response.status, data, headers)
            except AgentError as error:
                delay = self._target.should_retry(error, attempt, prepared.method)
                if delay is None:
                    raise
                time.sleep(delay)
                continue
            return data, headers

    # ----- what the generated methods call ----------------------------------------------------

    def _json(self, spec: Spec, fields: Mapping[str, Any], model: type[ResultT]) -> ResultT:
        prepared = calls.prepare(spec, fields)
        data, _ = self._exchange(prepared)
        return calls.json_result(prepared, data, model)

    def _image(self, spec: Spec, fields: Mapping[str, Any]) -> Screenshot:
        prepared = calls.prepare(spec, fields)
        data, headers = self._exchange(prepared)
        return calls.screenshot(prepared, data, headers)

    def _text(self, spec: Spec, fields: Mapping[str, Any]) -> str:
        return self._exchange(calls.prepare(spec, fields))[0].decode()

    def _raw(self, spec: Spec, fields: Mapping[str, Any]) -> bytes:
        return self._exchange(calls.prepare(spec, fields))[0]

    def _document(self, spec: Spec, fields: Mapping[str, Any]) -> dict[str, Any]:
        document: dict[str, Any] = orjson.loads(self._exchange(calls.prepare(spec, fields))[0])
        return document

    def _open_stream(self, prepared: Prepared) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        response, connection = self._send(prepared, own=True)
        if response.status >= 400:
            data = response.read()
            connection.close()
            calls.raise_for_status(response.status, data, CIMultiDict(response.getheaders()))
        return response, connection

    def _events(self, spec: Spec, fields: Mapping[str, Any], model: type[BaseModel] | None) -> Iterator[Any]:
        """The events of a stream (NDJSON), each parsed by ``model`` as it arrives."""
        response, connection = self._open_stream(calls.prepare(spec, fields))

        def events() -> Iterator[Any]:
            try:
                while line := response.readline():
                    if line.strip():
                        yield calls.event(model, line)
            finally:
                response.close()
                connection.close()

        return events()

    def _download(self, spec: Spec, fields: Mapping[str, Any]) -> Download:
        response, connection = self._open_stream(calls.prepare(spec, fields))
        return Download(response, connection)

    def _upload(
        self,
        spec: Spec,
        fields: Mapping[str, Any],
        source: Source,
        model: type[ResultT],
        progress: Progress | None,
    ) -> ResultT:
        prepared = calls.prepare(spec, fields)
        prepared.headers["Content-Type"] = calls.OCTET_STREAM
        file: IO[bytes] | None = None
        try:
            if isinstance(source, bytes):
                body: Any = source
                total: int | None = len(source)
            elif isinstance(source, os.PathLike):
                file = open(source, "rb")  # noqa: SIM115 (closed in finally)
                total = remaining_size(file)
                body = CountingReader(file, total, progress)
            elif hasattr(source, "read"):
                total = remaining_size(source)  # type: ignore[arg-type]
                body = CountingReader(source, total, progress)  # type: ignore[arg-type]
            else:
                total, body = None, counted(source, progress)
            chunked = total is None
            if not chunked:
                prepared.headers["Content-Length"] = str(total)
            response, connection = self._send(prepared, body, own=True, chunked=chunked)
            try:
                data = response.read()
            finally:
                connection.close()
            calls.raise_for_status(response.status, data, CIMultiDict(response.getheaders()))
            if isinstance(source, bytes) and progress is not None:
                progress(len(source), len(source))
            return calls.parse(model, data)
        finally:
            if file is not None:
                file.close()
