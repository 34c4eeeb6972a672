"""Give the memory a burst of work freed back to the system once the agent is idle again.

glibc keeps what C code frees (libwebp's work buffers: ~12 MiB for one 720p WebP, Pillow's
images, the encoders' scratch space) for the next allocation instead of returning it, so an
agent that served one WebP screenshot or one big tree stays that much larger for the rest of
its life. Once a second, with no request in flight, this asks glibc how much it holds free
(``mallinfo2``) and, above ``threshold`` bytes and if more was freed since the last trim,
hands it back (``malloc_trim``) on a worker thread. The next burst faults those pages in again, which is what the idle agent's footprint
is worth. Nothing happens on a libc without these calls (musl).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

from agent.tasks import cancel_and_wait

LOG = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
# mallopt(3) parameters: glibc's own handing back (a fresh mmap per large block, the heap's top
# trimmed on every free) is off while serving; the idle trim below does it instead.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_MMAP_BELOW = 32 * 1024 * 1024  # blocks under this come from the heap and are reused
KEEP_TOP_BELOW = 128 * 1024 * 1024  # the heap's free top is kept up to this between trims
THRESHOLD_BYTES = 1024 * 1024  # less free than this is not worth a trim


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",  # free bytes held in the heaps: what a trim can give back
            "keepcost",
        )
    ]


class Glibc:
    """The two glibc calls, or None from ``load`` when this libc lacks them."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._mallinfo2 = libc.mallinfo2
        self._mallinfo2.restype = _MallInfo2
        self._malloc_trim = libc.malloc_trim
        self._malloc_trim.argtypes = [ctypes.c_size_t]
        self._malloc_trim.restype = ctypes.c_int
        self._mallopt = libc.mallopt
        self._mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        self._mallopt.restype = ctypes.c_int

    @classmethod
    def load(cls) -> Glibc | None:
        name = ctypes.util.find_library("c")
        try:
            return cls(ctypes.CDLL(name))
        except (OSError, AttributeError, TypeError):
            return None

    def free_bytes(self) -> int:
        return int(self._mallinfo2().fordblks)

    def trim(self) -> None:
        self._malloc_trim(0)

    def keep_freed_memory(self) -> None:
        """Freed blocks stay in the heap for the next request instead of going back at once.

        By default glibc serves a block of 128 KiB or more (a screenshot's work buffers, an
        encoder's output) with a fresh mmap and unmaps it when freed, so the next screenshot
        faults every 4 KiB page in again (~2,000 faults for one 720p WebP, ~5 ms here); its
        adaptive threshold only learns sizes it has already freed. With both thresholds fixed
        high, the pages are reused while requests come; the idle trim returns them after.
        """
        self._mallopt(M_MMAP_THRESHOLD, KEEP_MMAP_BELOW)
        self._mallopt(M_TRIM_THRESHOLD, KEEP_TOP_BELOW)


class IdleTrim:
    """Trims the heap while ``busy()`` is false and enough freed memory is held."""

    def __init__(
        self,
        busy: Callable[[], bool],
        *,
        threshold: int = THRESHOLD_BYTES,
        every: float = CHECK_EVERY_S,
        libc: Glibc | None = None,
    ) -> None:
        self.busy = busy
        self.threshold = threshold
        self.every = every
        self.libc = libc if libc is not None else Glibc.load()
        self.trims = 0
        self._free_after_trim = -1  # what glibc still counted free after the last trim
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.libc is None:
            LOG.info("heap trimming off: this libc has no mallinfo2/malloc_trim")
            return
        self.libc.keep_freed_memory()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="heap-trim")

    async def _run(self) -> None:
        assert self.libc is not None
        while True:
            await asyncio.sleep(self.every)
            if self.busy():
                continue
            free = self.libc.free_bytes()
            # A trim hands pages back but glibc still counts them free: the same figure again
            # means nothing was freed since, and another trim would find nothing to return.
            if free < self.threshold or free == self._free_after_trim:
                continue
            await asyncio.to_thread(self.libc.trim)
            self._free_after_trim = self.libc.free_bytes()
            self.trims += 1

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
