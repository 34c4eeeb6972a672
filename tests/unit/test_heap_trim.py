"""The idle heap trim gives freed C memory back to the system, seen in /proc/self/statm, and
leaves it alone while a request is in flight."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from collections.abc import Iterator

import pytest

from agent.supervision.heap import Glibc, IdleTrim

pytestmark = pytest.mark.unit

PAGE = 4096
BLOCK = 64 * 1024  # below glibc's mmap threshold: these come from the heap and stay there when freed
BLOCKS = 1024  # 64 MiB written, every other block freed: 32 MiB of holes


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


@pytest.fixture
def freed_heap() -> Iterator[None]:
    """32 MiB freed in holes between live blocks, so glibc keeps it (no free top to shrink)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = []
    for _ in range(BLOCKS):
        block = libc.malloc(BLOCK)
        ctypes.memset(block, 1, BLOCK)
        blocks.append(block)
    for block in blocks[::2]:
        libc.free(block)
    yield
    for block in blocks[1::2]:
        libc.free(block)


@pytest.mark.skipif(Glibc.load() is None, reason="needs glibc's mallinfo2 and malloc_trim")
async def test_idle_trim_returns_freed_memory(freed_heap: None) -> None:
    before = rss_bytes()
    trim = IdleTrim(lambda: False, every=0.01)
    trim.start()
    try:
        deadline = time.monotonic() + 5
        while trim.trims == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        await trim.close()
    assert trim.trims >= 1
    assert before - rss_bytes() > 16 * 1024 * 1024, (before, rss_bytes())


@pytest.mark.skipif(Glibc.load() is None, reason="needs glibc's mallinfo2 and malloc_trim")
async def test_no_trim_while_a_request_is_in_flight(freed_heap: None) -> None:
    before = rss_bytes()
    trim = IdleTrim(lambda: True, every=0.01)
    trim.start()
    try:
        await asyncio.sleep(0.2)
    finally:
        await trim.close()
    assert trim.trims == 0
    assert before - rss_bytes() < 4 * 1024 * 1024, (before, rss_bytes())


@pytest.mark.skipif(Glibc.load() is None, reason="needs glibc's mallinfo2 and malloc_trim")
async def test_an_idle_heap_is_trimmed_once_not_every_second(freed_heap: None) -> None:
    trim = IdleTrim(lambda: False, every=0.01)
    trim.start()
    try:
        await asyncio.sleep(0.3)  # ~30 checks with nothing freed after the first trim
    finally:
        await trim.close()
    assert 1 <= trim.trims <= 3, trim.trims  # (other threads may free a little meanwhile)
