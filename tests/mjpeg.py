"""A reader of the agent's MJPEG screencast for tests: frames parsed from the raw multipart stream,
collected by a thread with their arrival time, so a test can count and inspect them."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
from PIL import Image


@dataclass
class ReceivedFrame:
    seq: int
    data: bytes
    headers: dict[str, str]
    arrived: float  # time.monotonic()

    def pixels(self) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.data)).convert("RGB"), dtype=np.int16)


@dataclass
class MjpegReader:
    """Reads ``GET /screencast`` (MJPEG) over a raw socket on a thread until ``close``.

    HTTP/1.0, so the body is the multipart stream itself (no chunked coding) and ``close`` can
    end a read that waits for a frame which may never come (an idle desktop)."""

    url: str
    token: str
    query: str = ""
    frames: list[ReceivedFrame] = field(default_factory=list)
    status_line: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        host, port = urlsplit(self.url).netloc.rsplit(":", 1)
        self._socket = socket.create_connection((host, int(port)), timeout=30)
        path = "/screencast" + (f"?{self.query}" if self.query else "")
        auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
        self._socket.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n{auth}\r\n".encode())
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "the screencast did not answer"

    def _run(self) -> None:
        buffer = b""
        try:
            while not self._stop.is_set():
                chunk = self._socket.recv(1 << 20)
                if not chunk:
                    return
                buffer += chunk
                if not self._opened.is_set():
                    head_end = buffer.find(b"\r\n\r\n")
                    if head_end < 0:
                        continue
                    lines = buffer[:head_end].decode("latin-1").split("\r\n")
                    self.status_line = lines[0]
                    self.headers = {
                        k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])
                    }
                    buffer = buffer[head_end + 4 :]
                    self._opened.set()
                buffer = self._parse(buffer)
        except BaseException as exc:  # reported by the test through .error
            if not self._stop.is_set():
                self.error = exc
        finally:
            self._opened.set()

    def _parse(self, buffer: bytes) -> bytes:
        while True:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return buffer
            lines = buffer[:head_end].decode("ascii").split("\r\n")
            assert lines[0] == "--frame", lines
            headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
            length = int(headers["content-length"])
            start = head_end + 4
            if len(buffer) < start + length + 2:
                return buffer
            data = buffer[start : start + length]
            assert buffer[start + length : start + length + 2] == b"\r\n"
            self.frames.append(ReceivedFrame(int(headers["x-frame-seq"]), data, headers, time.monotonic()))
            buffer = buffer[start + length + 2 :]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedFrame]:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count:
            if self.error is not None:
                raise self.error
            assert time.monotonic() < deadline, f"{count} frames did not come within {timeout} s"
            time.sleep(0.01)
        return self.frames

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._socket.close()

    def __enter__(self) -> MjpegReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
