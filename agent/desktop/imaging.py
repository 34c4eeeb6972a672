"""Image encoding straight from the X capture buffer (BGRX, 4 bytes a pixel), with Pillow alone.

A ``Frame`` is bytes-like BGRX rows (often a view of the capture's shared segment, read in place)
plus its size. Everything that changes pixels works on one RGB copy that Pillow unpacks from the
frame (``Image.frombytes`` with the ``BGRX`` raw mode): the cursor is pasted onto that copy with its
alpha as the mask, shrinking is ``Image.reduce`` by the largest whole factor (a box average) and one
bilinear step for what remains, a canvas is a paste onto black.

JPEG: Pillow's libjpeg-turbo, written into a memory file (memfd), because Pillow releases the GIL
only while it encodes into a real file: then a large frame's two halves are unpacked, shrunk and
encoded on two cores at once and joined into one JPEG (``join_halves``: a restart marker between
the two scans). PNG: the RGB rows, each after its filter byte, come out of Pillow's raw encoder in
one pass (a row stride one byte longer than the row, zero-padded: each row's pad byte is the next
row's filter byte) and are deflated with ISA-L, ~20x faster than zlib level 1 at a similar size.
WebP: Pillow. No numpy: it would cost ~14 MiB of resident memory in every agent.

Not thread-safe: one ``Encoder`` per capture thread.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from isal import isal_zlib
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# From this many frame pixels (720p: 0.92 M) a JPEG is made as two halves on two cores and joined.
SPLIT_MIN_PIXELS = 600_000
MCU = 16  # rows and columns of a 4:2:0 JPEG's minimum coded unit
SINK_KEEP_BYTES = 4 * 2**20  # a memory file grown past this by one large JPEG is emptied after it

Pixels = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class Sprite:
    """A picture with straight alpha (BGRA, as XFixes hands out the pointer) to draw over a frame,
    its top-left corner at ``left``, ``top`` of the frame (either may be negative)."""

    pixels: bytes
    width: int
    height: int
    left: int
    top: int


@dataclass(frozen=True, slots=True)
class Frame:
    """``height`` rows of ``width`` BGRX pixels (4 bytes each, no row padding), read in place: it
    may be the capture's shared segment, valid until the next grab. ``sprite`` (the pointer) is
    drawn onto the encoder's own copy, never into ``pixels``."""

    pixels: Pixels
    width: int
    height: int
    sprite: Sprite | None = None

    def rows(self, first: int, end: int) -> Frame:
        """Rows ``first`` to ``end`` (a view, no copy), the sprite moved along."""
        row = self.width * 4
        sprite = self.sprite
        if sprite is not None:
            top = sprite.top - first
            sprite = replace(sprite, top=top) if top < end - first and top + sprite.height > 0 else None
        return Frame(memoryview(self.pixels)[first * row : end * row], self.width, end - first, sprite)


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


def reduction(width: int, height: int, size: tuple[int, int]) -> int:
    """The largest whole factor the frame can be box-averaged down by and still cover ``size``."""
    return max(1, min(width // size[0], height // size[1]))


def unpacked(frame: Frame) -> Image.Image:
    """The frame as an RGB image of its own (the GIL is released while Pillow unpacks), with the
    sprite drawn on it."""
    image = Image.new("RGB", (frame.width, frame.height), None)  # not cleared: every pixel is written
    image.frombytes(frame.pixels, "raw", "BGRX")
    sprite = frame.sprite
    if sprite is not None:
        picture = Image.frombuffer("RGBA", (sprite.width, sprite.height), sprite.pixels, "raw", "BGRA", 0, 1)
        image.paste(picture, (sprite.left, sprite.top), picture)
    return image


def reduced(image: Image.Image, factor: int) -> Image.Image:
    """Each ``factor`` x ``factor`` block averaged; the rows and columns past the last whole
    block are left out (as every earlier halving did)."""
    if factor == 1:
        return image
    width, height = image.size
    return image.reduce(factor, (0, 0, width - width % factor, height - height % factor))


class _JpegSink:
    """A memory file (memfd) the JPEG encoder writes into. Pillow holds the GIL while it encodes
    into a BytesIO but releases it while it encodes into a file with a descriptor, so that the
    event loop and the other half's encoder run meanwhile."""

    def __init__(self) -> None:
        self._fd = os.memfd_create("computer-agent-jpeg", os.MFD_CLOEXEC)
        self._file = open(self._fd, "wb", buffering=0, closefd=False)  # noqa: SIM115 (closed in close)

    def encode(self, image: Image.Image, quality: int) -> bytes:
        os.lseek(self._fd, 0, os.SEEK_SET)
        image.save(self._file, "JPEG", quality=quality, subsampling="4:2:0")
        size = os.lseek(self._fd, 0, os.SEEK_CUR)
        data = os.pread(self._fd, size, 0)
        if size > SINK_KEEP_BYTES:
            os.ftruncate(self._fd, 0)
        return data

    def close(self) -> None:
        self._file.close()
        os.close(self._fd)


class Encoder:
    def __init__(self) -> None:
        self._sinks: list[_JpegSink] = []  # [this thread's, the helper's], made on first use
        self._helper: ThreadPoolExecutor | None = None  # the second core's worker, made on first use

    def close(self) -> None:
        if self._helper is not None:
            self._helper.shutdown(wait=False)
            self._helper = None
        for sink in self._sinks:
            sink.close()
        self._sinks.clear()

    def encode(
        self,
        frame: Frame,
        *,
        format: str,
        quality: int,
        size: tuple[int, int],
        canvas: tuple[int, int, int, int] | None = None,
    ) -> Encoded:
        """``frame`` shrunk to ``size``; ``canvas`` (width, height, left, top): the image pasted
        there onto black."""
        factor = reduction(frame.width, frame.height, size)
        exact = (frame.width // factor, frame.height // factor) == size
        if format == "jpeg" and canvas is None and exact and self._worth_splitting(frame):
            joined = self._jpeg_halves(frame, factor, quality)
            if joined is not None:
                return Encoded(joined, *size)
        if format == "png" and canvas is None and factor == 1 and exact and frame.sprite is None:
            # Nothing to change: the rows come straight from the frame, no RGB copy in between.
            # (a zero-copy view: Pillow's stub says bytes, any buffer works)
            view = Image.frombuffer("RGBX", size, frame.pixels, "raw", "RGBX", 0, 1)  # type: ignore[arg-type]
            return Encoded(png_bytes(view, "BGR"), *size)
        image = reduced(unpacked(frame), factor)
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        if canvas is not None:
            board = Image.new("RGB", canvas[:2])
            board.paste(image, canvas[2:])
            image = board
        width, height = image.size
        if format == "jpeg":
            return Encoded(self._sink(0).encode(image, quality), width, height)
        if format == "png":
            return Encoded(png_bytes(image, "RGB"), width, height)
        out = io.BytesIO()
        image.save(out, "WEBP", quality=quality, method=0)
        return Encoded(out.getvalue(), width, height)

    def _worth_splitting(self, frame: Frame) -> bool:
        return frame.width * frame.height >= SPLIT_MIN_PIXELS and (os.cpu_count() or 1) >= 2

    def _jpeg_halves(self, frame: Frame, factor: int, quality: int) -> bytes | None:
        """The bottom half is unpacked, shrunk and encoded on the helper thread while this one does
        the top, and the two scans are joined into one JPEG with a restart marker between them:
        in ~55-60% of one thread's time while the second core is free. The top half has whole
        MCU rows (``factor`` x 16 frame rows each), at least as many as the bottom half."""
        width, height = frame.width // factor, frame.height // factor
        mcu_rows = -(-height // MCU)
        if mcu_rows < 2:
            return None
        top_rows = -(-mcu_rows // 2) * MCU
        interval = (top_rows // MCU) * -(-width // MCU)  # MCUs in the top half
        if interval > 0xFFFF:
            return None
        split, end = top_rows * factor, height * factor
        bottom = self._helper_pool().submit(self._jpeg_part, 1, frame.rows(split, end), factor, quality)
        top = self._jpeg_part(0, frame.rows(0, split), factor, quality)
        return join_halves(top, bottom.result(), height, interval)

    def _jpeg_part(self, sink: int, frame: Frame, factor: int, quality: int) -> bytes:
        return self._sink(sink).encode(reduced(unpacked(frame), factor), quality)

    def _sink(self, index: int) -> _JpegSink:
        while len(self._sinks) <= index:  # both are made on the capture thread before a split
            self._sinks.append(_JpegSink())
        return self._sinks[index]

    def _helper_pool(self) -> ThreadPoolExecutor:
        self._sink(1)
        if self._helper is None:
            self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode-half")
        return self._helper


def png_bytes(image: Image.Image, rawmode: str) -> bytes:
    """A PNG file of ``image``'s pixels, packed as RGB by Pillow's ``rawmode`` (``RGB``, or
    ``BGR`` for a BGRX frame viewed as RGBX). Pillow's raw encoder writes each row with a stride
    one byte longer, zero-padded: that pad byte is the next row's filter byte (0, None), so the
    filtered rows are one zero byte followed by the packed rows less their last byte."""
    width, height = image.size
    rows = image.tobytes("raw", rawmode, 1 + 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    deflate = isal_zlib.compressobj(1)
    compressed = b"".join((deflate.compress(b"\0"), deflate.compress(memoryview(rows)[:-1]), deflate.flush()))
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
