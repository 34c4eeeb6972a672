"""One keep-alive HTTP(S) connection to the control plane, written to from one worker thread.

The standard library's ``http.client`` rather than aiohttp's client: a beat is one small POST
every few seconds, and aiohttp's client (connector, TLS contexts built at import, cookie jars)
would add ~4 MiB to every agent of a fleet for it (agent.api.lazy_client). The call blocks, so
it runs on its own thread; ``abort`` (from the event loop) shuts the socket down so a beat past
its deadline ends at once instead of holding the thread.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import threading
import urllib.parse

MAX_ANSWER_BYTES = 64 * 1024  # a beat's answer is a small JSON object (interval_seconds)
# A kept-alive connection the server closed while idle fails on first use: sent again once, fresh.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Poster:
    def __init__(self, url: str, context: ssl.SSLContext) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        self._context = context
        self._basic: str | None = None  # user:password@ in the URL, sent as aiohttp would
        if parts.username is not None:
            pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._basic = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()  # the connection, between the worker and abort()

    def post(self, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        """POST ``body``; (status, answer). Raises OSError or http.client.HTTPException."""
        headers = dict(headers)
        if self._basic is not None and "Authorization" not in headers:
            headers["Authorization"] = self._basic
        reused = self._connection is not None
        try:
            return self._send(body, headers, timeout)
        except _STALE:
            if not reused:
                raise
            return self._send(body, headers, timeout)  # on a new connection (_send closed the old)

    def _send(self, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        connection = self._connect(timeout)
        try:
            connection.request("POST", self._target, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read(MAX_ANSWER_BYTES)
            if response.will_close or not response.isclosed():  # not read to its end: not reusable
                self.close()
            return response.status, answer
        except BaseException:
            self.close()
            raise

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        with self._lock:
            connection = self._connection
            if connection is None:
                if self._https:
                    connection = http.client.HTTPSConnection(
                        self._host, self._port, timeout=timeout, context=self._context
                    )
                else:
                    connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
                self._connection = connection
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            return connection

    def abort(self) -> None:
        """End a POST in progress (its thread raises OSError at once); safe from any thread."""
        with self._lock:
            connection = self._connection
            sock = connection.sock if connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
