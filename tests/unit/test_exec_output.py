"""Output helpers: UTF-8-safe chunking, bounded capture, text/base64, signals, the output log."""

from __future__ import annotations

import asyncio
import base64
import signal

import pytest

from agent.errors import InvalidArgument
from agent.exec.output import Capture, Utf8Aligner, encode, incomplete_tail
from agent.exec.processes import OutputLog, follow, parse_signal
from tests.waiting import wait_until_async


@pytest.mark.parametrize(
    ("data", "cut"),
    [
        (b"", 0),
        (b"abc", 0),
        ("é".encode(), 0),
        ("é".encode()[:1], 1),
        ("日".encode()[:2], 2),
        ("🎉".encode()[:3], 3),
        (b"a" + "🎉".encode(), 0),
        (b"\xff", 0),
        (b"\x80\x80\x80\x80", 0),
    ],
)
def test_incomplete_tail(data: bytes, cut: int) -> None:
    assert incomplete_tail(data) == cut


def test_aligner_rejoins_every_split() -> None:
    text = "aé日🎉z" * 3
    raw = text.encode()
    for size in range(1, 8):
        aligner = Utf8Aligner()
        pieces = [aligner.feed(raw[i : i + size]) for i in range(0, len(raw), size)]
        pieces.append(aligner.flush())
        assert all(encode(p)[1] == "utf-8" for p in pieces)
        assert b"".join(pieces).decode() == text


def test_capture_keeps_the_head_and_counts_the_rest() -> None:
    capture = Capture(5)
    for chunk in (b"abc", b"def", b"ghi"):
        capture.feed(chunk)
    assert capture.value() == b"abcde" and capture.truncated and capture.total == 9
    capture = Capture(2)
    capture.feed("aé".encode() + b"x")
    assert capture.value() == b"a"  # the cap split é: the half is dropped
    capture.close()
    capture.feed(b"more")
    assert capture.total == 8 and capture.value() == b""


def test_encode() -> None:
    assert encode("ok ✓".encode()) == ("ok ✓", "utf-8")
    assert encode(b"\xff\x00") == (base64.b64encode(b"\xff\x00").decode(), "base64")


def test_parse_signal() -> None:
    for value in ("TERM", "SIGTERM", "sigterm", " term ", 15, "15"):
        assert parse_signal(value) is signal.SIGTERM
    with pytest.raises(InvalidArgument):
        parse_signal("NOPE")
    with pytest.raises(InvalidArgument):
        parse_signal(999)


async def test_output_log_rolls_and_follows() -> None:
    log = OutputLog(10)
    log.append("stdout", b"0123456789")
    log.append("stderr", b"abcd")
    assert (log.start, log.end, log.size) == (4, 14, 10)
    assert [(p.offset, p.stream, p.data) for p in log.read(0)] == [
        (4, "stdout", b"456789"),
        (10, "stderr", b"abcd"),
    ]
    assert log.tail("stdout", 3) == b"789" and log.tail("stderr", 100) == b"abcd"

    seen: list[bytes] = []

    async def reader() -> None:
        async for piece in follow(log, 12, wait=True):
            seen.append(piece.data)

    task = asyncio.create_task(reader())
    await wait_until_async(lambda: seen == [b"cd"], what="the reader to catch up and wait")
    log.append("stdout", b"XY")
    await wait_until_async(lambda: seen == [b"cd", b"XY"], what="the appended piece")
    log.close()
    await asyncio.wait_for(task, 1)
    assert seen == [b"cd", b"XY"]
