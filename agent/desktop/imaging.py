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
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import simplejpeg
from isal import isal_zlib
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


class Encoder:
    def __init__(self) -> None:
        self._rows: np.ndarray | None = None
        self._scratch: dict[tuple[str, int, int], np.ndarray] = {}  # halving buffers, reused

    def _buffer(self, name: str, height: int, width: int) -> np.ndarray:
        """A uint32 work array reused between frames (a fresh one costs page faults here)."""
        key = (name, height, width)
        buffer = self._scratch.get(key)
        if buffer is None:
            if len(self._scratch) >= 16:  # sizes come and go (regions): keep the set bounded
                self._scratch.clear()
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
            data = simplejpeg.encode_jpeg(
                pixels, quality=quality, colorspace="BGRX", colorsubsampling="420", fastdct=True
            )
            return Encoded(data, width, height)
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
        """Each 2x2 block averaged, four channels at once on 32-bit pixels: avg(a, b) per byte is
        (a & b) + ((a ^ b) >> 1 & 0x7F7F7F7F), which never carries from one channel into the next."""
        full_height, full_width = int(pixels.shape[0]), int(pixels.shape[1])
        height, width = full_height // 2, full_width // 2
        words = np.ascontiguousarray(pixels).view(np.uint32).reshape(full_height, full_width)
        rows = self._buffer("rows", height, full_width)
        _average(
            words[0 : 2 * height : 2],
            words[1 : 2 * height : 2],
            rows,
            self._buffer("t1", height, full_width),
        )
        out = self._buffer("out", height, width)
        _average(
            rows[:, 0 : 2 * width : 2], rows[:, 1 : 2 * width : 2], out, self._buffer("t2", height, width)
        )
        return out.view(np.uint8).reshape(height, width, 4)

    def _png(self, bgrx: np.ndarray) -> bytes:
        height, width = bgrx.shape[:2]
        rows = self._row_buffer(width, height)
        rgb = rows[:, 1:].reshape(height, width, 3)
        rgb[..., 0] = bgrx[..., 2]
        rgb[..., 1] = bgrx[..., 1]
        rgb[..., 2] = bgrx[..., 0]
        return png_bytes(rows, width, height)


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
