"""Image encoding straight from the X capture buffer (BGRX, 4 bytes a pixel).

JPEG goes through libjpeg-turbo (simplejpeg) reading the BGRX pixels in place (the capture's
shared segment); PNG is built here: BGRX -> RGB rows into a buffer reused between frames (a fresh
full-frame buffer costs a page fault per 4 KiB on these VMs) and deflated with ISA-L, ~20x faster
than zlib level 1 at a similar size. Shrinking halves with numpy first (a 2x2 box average), then
Pillow does what remains; WebP uses Pillow.

Not thread-safe: one ``Encoder`` per capture thread.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import simplejpeg
from isal import isal_zlib
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# From this many pixels (1080p: 2.07 M) a JPEG is encoded as two halves on two cores and joined.
SPLIT_MIN_PIXELS = 1_500_000
MCU = 16  # rows and columns of a 4:2:0 JPEG's minimum coded unit
SCRATCH_BYTES = 12 * 2**20  # work arrays kept between frames (a 1080p halving needs ~2.6 MiB)
HALVE_BAND = 32  # rows halved at a time: the work arrays stay in the CPU's cache


@dataclass(frozen=True, slots=True)
class Encoded:
    data: bytes
    width: int
    height: int


def target_size(
    width: int, height: int, scale: float | None, max_width: int | None, max_height: int | None
) -> tuple[int, int]:
    """The output size: ``scale`` first, then shrink to fit the max box, aspect kept."""
    factor = 1.0 if scale is None else scale
    if max_width is not None:
        factor = min(factor, max_width / width)
    if max_height is not None:
        factor = min(factor, max_height / height)
    if factor >= 1.0:
        return width, height
    return max(1, round(width * factor)), max(1, round(height * factor))


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(payload, zlib.crc32(kind)))
    )


def _encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    data: bytes = simplejpeg.encode_jpeg(
        pixels, quality=quality, colorspace="BGRX", colorsubsampling="420", fastdct=True
    )
    return data


class Encoder:
    def __init__(self) -> None:
        self._rows: np.ndarray | None = None
        self._scratch: dict[tuple[str, int, int], np.ndarray] = {}  # halving buffers, reused
        self._helper: ThreadPoolExecutor | None = None  # the second core's encoder, made on first use

    def close(self) -> None:
        if self._helper is not None:
            self._helper.shutdown(wait=False)
            self._helper = None

    def _jpeg(self, pixels: np.ndarray, quality: int) -> bytes:
        """Large frames: the bottom half is encoded on a helper thread while this one encodes the
        top (libjpeg-turbo releases the GIL), and the two scans are joined into one JPEG with a
        restart marker between them (``join_halves``): 1080p in ~60% of the time on two cores."""
        height, width = pixels.shape[:2]
        if height * width < SPLIT_MIN_PIXELS or (os.cpu_count() or 1) < 2:
            return _encode_jpeg(pixels, quality)
        mcu_rows = -(-height // MCU)
        top_rows = -(-mcu_rows // 2) * MCU  # at least as many MCU rows as the bottom half has
        interval = (top_rows // MCU) * -(-width // MCU)  # MCUs in the top half
        if interval > 0xFFFF:
            return _encode_jpeg(pixels, quality)
        bottom = self._helper_pool().submit(_encode_jpeg, pixels[top_rows:], quality)
        top = _encode_jpeg(pixels[:top_rows], quality)
        joined = join_halves(top, bottom.result(), height, interval)
        return joined if joined is not None else _encode_jpeg(pixels, quality)

    def _buffer(self, name: str, height: int, width: int) -> np.ndarray:
        """A uint32 work array reused between frames (a fresh one costs page faults here)."""
        key = (name, height, width)
        buffer = self._scratch.get(key)
        if buffer is None:
            if sum(kept.nbytes for kept in self._scratch.values()) > SCRATCH_BYTES:
                self._scratch.clear()  # sizes come and go (regions): the set stays bounded
            buffer = self._scratch[key] = np.empty((height, width), dtype=np.uint32)
        return buffer

    def _row_buffer(self, width: int, height: int) -> np.ndarray:
        shape = (height, 1 + width * 3)
        if self._rows is None or self._rows.shape != shape:
            self._rows = np.zeros(shape, dtype=np.uint8)  # filter byte 0 (None) on every row
        return self._rows

    def encode(
        self,
        pixels: np.ndarray,
        *,
        format: str,
        quality: int,
        size: tuple[int, int],
        canvas: tuple[int, int, int, int] | None = None,
    ) -> Encoded:
        """``pixels``: (height, width, 4) BGRX, read in place (it may be the capture's shared
        segment). ``canvas`` (width, height, left, top): the image pasted there onto black."""
        height, width = pixels.shape[:2]
        if size != (width, height):
            pixels = self._resize(pixels, size)
        if canvas is not None:
            board = np.zeros((canvas[1], canvas[0], 4), dtype=np.uint8)
            left, top = canvas[2:]
            board[top : top + pixels.shape[0], left : left + pixels.shape[1]] = pixels[
                : canvas[1] - top, : canvas[0] - left
            ]
            pixels = board
        height, width = pixels.shape[:2]
        if format == "jpeg":
            return Encoded(self._jpeg(pixels, quality), width, height)
        if format == "png":
            return Encoded(self._png(pixels), width, height)
        image = Image.frombuffer("RGB", (width, height), pixels, "raw", "BGRX", 0, 1)
        out = io.BytesIO()
        image.save(out, "WEBP", quality=quality, method=0)
        return Encoded(out.getvalue(), width, height)

    def _resize(self, pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Halve (a 2x2 box average on whole pixels) while the target is at most half, then a
        bilinear step for what remains, on the BGRX pixels as they are (no RGB conversion):
        a half-scale screenshot then costs less than a full one instead of more."""
        while size[0] <= pixels.shape[1] // 2 and size[1] <= pixels.shape[0] // 2:
            pixels = self._halve(pixels)
        height, width = pixels.shape[:2]
        if size == (width, height):
            return pixels
        image = Image.frombuffer("RGBX", (width, height), np.ascontiguousarray(pixels), "raw", "RGBX", 0, 1)
        return np.asarray(image.resize(size, Image.Resampling.BILINEAR))

    def _halve(self, pixels: np.ndarray) -> np.ndarray:
        """Each 2x2 block averaged, four channels at once on 32-bit pixels (``_average``), in
        bands of rows that stay in the CPU's cache; a large frame's two halves on two cores."""
        full_height, full_width = int(pixels.shape[0]), int(pixels.shape[1])
        height, width = full_height // 2, full_width // 2
        words = np.ascontiguousarray(pixels).view(np.uint32).reshape(full_height, full_width)
        out = self._buffer("out", height, width)
        if full_height * full_width >= SPLIT_MIN_PIXELS and (os.cpu_count() or 1) >= 2:
            middle = height // 2
            top = self._helper_pool().submit(_halve_rows, words, out, 0, middle, self._bands("a", full_width))
            _halve_rows(words, out, middle, height, self._bands("b", full_width))
            top.result()
        else:
            _halve_rows(words, out, 0, height, self._bands("a", full_width))
        return out.view(np.uint8).reshape(height, width, 4)

    def _bands(self, name: str, full_width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            self._buffer(f"{name}-rows", HALVE_BAND, full_width),
            self._buffer(f"{name}-spare", HALVE_BAND, full_width),
            self._buffer(f"{name}-half", HALVE_BAND, full_width // 2),
        )

    def _helper_pool(self) -> ThreadPoolExecutor:
        if self._helper is None:
            self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode-half")
        return self._helper

    def _png(self, bgrx: np.ndarray) -> bytes:
        height, width = bgrx.shape[:2]
        rows = self._row_buffer(width, height)
        rgb = rows[:, 1:].reshape(height, width, 3)
        rgb[..., 0] = bgrx[..., 2]
        rgb[..., 1] = bgrx[..., 1]
        rgb[..., 2] = bgrx[..., 0]
        return png_bytes(rows, width, height)


def _halve_rows(
    words: np.ndarray, out: np.ndarray, first: int, end: int, bands: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    """Rows ``first`` to ``end`` of the halved image ``out`` from the full-size ``words``."""
    rows, spare, half_spare = bands
    width = out.shape[1]
    for y in range(first, end, HALVE_BAND):
        n = min(HALVE_BAND, end - y)
        _average(words[2 * y : 2 * (y + n) : 2], words[2 * y + 1 : 2 * (y + n) : 2], rows[:n], spare[:n])
        _average(
            rows[:n, 0 : 2 * width : 2], rows[:n, 1 : 2 * width : 2], out[y : y + n], half_spare[:n, :width]
        )


def _average(a: np.ndarray, b: np.ndarray, out: np.ndarray, spare: np.ndarray) -> None:
    """``out`` = the per-byte average of ``a`` and ``b`` (uint32 arrays of out's shape), rounded down."""
    np.bitwise_xor(a, b, out=spare)
    np.right_shift(spare, 1, out=spare)
    np.bitwise_and(spare, 0x7F7F7F7F, out=spare)
    np.bitwise_and(a, b, out=out)
    np.add(out, spare, out=out)


def png_bytes(filtered_rows: np.ndarray, width: int, height: int) -> bytes:
    """A PNG file from RGB rows that already carry their filter byte."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    compressed = isal_zlib.compress(filtered_rows.data, 1)
    return b"".join(
        (PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", compressed), _chunk(b"IEND", b""))
    )


def _split(jpeg: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(the headers before SOS, the SOS segment, the entropy-coded scan) of a baseline JPEG as
    libjpeg-turbo writes it; None for anything else."""
    if jpeg[:2] != b"\xff\xd8" or jpeg[-2:] != b"\xff\xd9":
        return None
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF:
        marker, length = jpeg[at + 1], int.from_bytes(jpeg[at + 2 : at + 4], "big")
        if marker == 0xDA:
            return jpeg[:at], jpeg[at : at + 2 + length], jpeg[at + 2 + length : -2]
        at += 2 + length
    return None


def _with_height(headers: bytes, height: int) -> bytes | None:
    """``headers`` with the baseline frame header (SOF0) saying ``height`` rows."""
    at = 2
    while at + 4 <= len(headers):
        marker, length = headers[at + 1], int.from_bytes(headers[at + 2 : at + 4], "big")
        if marker == 0xC0:
            field = at + 5  # FF C0, length (2), precision (1), then the height
            return headers[:field] + height.to_bytes(2, "big") + headers[field + 2 :]
        at += 2 + length
    return None


def join_halves(top: bytes, bottom: bytes, height: int, interval: int) -> bytes | None:
    """One JPEG of ``height`` rows from the JPEGs of its top half (``interval`` MCUs, whole MCU
    rows) and its bottom half, encoded with the same tables: a restart interval of ``interval``
    MCUs (DRI) and an RST0 marker between the two scans, where the decoder resets its DC
    predictions as each half's encoder began. None if the halves' tables differ."""
    first, second = _split(top), _split(bottom)
    if first is None or second is None:
        return None
    headers, scan_header = _with_height(first[0], height), first[1]
    if headers is None or headers != _with_height(second[0], height) or scan_header != second[1]:
        return None
    restart = b"\xff\xdd\x00\x04" + interval.to_bytes(2, "big")
    return b"".join((headers, restart, scan_header, first[2], b"\xff\xd0", second[2], b"\xff\xd9"))
