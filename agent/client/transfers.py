"""File transfers as streams: uploads read their source in chunks, downloads hand out chunks.

Neither side holds a whole file in memory: an upload from a path or file object is read 1 MiB
at a time as the socket takes it, an upload from an iterator is sent chunked, and a download is
read and written (or yielded) chunk by chunk.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import http.client

    import aiohttp

CHUNK = 1 << 20
# Called with (bytes so far, total bytes or None when unknown) as a transfer advances.
Progress = Callable[[int, int | None], None]
Source = bytes | os.PathLike[str] | IO[bytes] | Iterable[bytes]
AsyncSource = bytes | os.PathLike[str] | IO[bytes] | Iterable[bytes] | AsyncIterable[bytes]


class CountingReader:
    """A file object's ``read`` that reports progress (http.client and aiohttp call ``read``)."""

    def __init__(self, file: IO[bytes], total: int | None, progress: Progress | None) -> None:
        self.file = file
        self.total = total
        self.progress = progress
        self.done = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size if size > 0 else CHUNK)
        self.done += len(chunk)
        if self.progress is not None and chunk:
            self.progress(self.done, self.total)
        return chunk


def remaining_size(file: IO[bytes]) -> int | None:
    """Bytes left in a seekable file, else None (then the upload is sent chunked)."""
    try:
        here = file.tell()
        end = os.fstat(file.fileno()).st_size
    except (OSError, ValueError, AttributeError):
        return None
    return max(0, end - here)


def counted(chunks: Iterable[bytes], progress: Progress | None) -> Iterator[bytes]:
    done = 0
    for chunk in chunks:
        done += len(chunk)
        if progress is not None:
            progress(done, None)
        yield chunk


async def acounted(chunks: AsyncIterable[bytes], progress: Progress | None) -> AsyncIterator[bytes]:
    done = 0
    async for chunk in chunks:
        done += len(chunk)
        if progress is not None:
            progress(done, None)
        yield chunk


class Download:
    """An open download: iterate ``iter_bytes()``, or ``save(path)``; close it when done (or use
    it as a context manager). ``size`` is the Content-Length (None when unknown)."""

    def __init__(self, response: http.client.HTTPResponse, connection: http.client.HTTPConnection) -> None:
        self._response = response
        self._connection = connection
        length = response.getheader("Content-Length")
        self.size = int(length) if length is not None else None

    def iter_bytes(self, chunk_size: int = CHUNK) -> Iterator[bytes]:
        try:
            while chunk := self._response.read(chunk_size):
                yield chunk
        finally:
            self.close()

    def save(self, path: str | os.PathLike[str], progress: Progress | None = None) -> int:
        """Write the file to ``path``; returns the bytes written."""
        done = 0
        with open(path, "wb") as file:
            for chunk in self.iter_bytes():
                file.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, self.size)
        return done

    def read(self) -> bytes:
        """The whole file in memory (for small files)."""
        return b"".join(self.iter_bytes())

    def close(self) -> None:
        self._response.close()
        self._connection.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncDownload:
    """``Download`` for ``AsyncAgent``: ``async for chunk in d.iter_bytes()``, ``await d.save(p)``."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.size = response.content_length

    async def iter_bytes(self, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(chunk_size):
                yield chunk
        finally:
            self.close()

    async def save(self, path: str | os.PathLike[str], progress: Progress | None = None) -> int:
        """Write the file to ``path`` (the writes are small and sequential; the loop is not held
        for long); returns the bytes written."""
        done = 0
        with open(path, "wb") as file:
            async for chunk in self.iter_bytes():
                file.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, self.size)
        return done

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_bytes()])

    def close(self) -> None:
        self._response.release()

    async def __aenter__(self) -> AsyncDownload:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
