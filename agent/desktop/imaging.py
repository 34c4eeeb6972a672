"""Image encoding straight from the X capture buffer (BGRX, 4 bytes a pixel), with Pillow alone.

A ``Frame`` is bytes-like BGRX rows (often a view of the capture's shared segment) plus its size.
Pillow reads it in place: the BGRX pixels seen as an RGBX image (``Image.frombuffer``, no copy),
packed as RGB by the ``BGR`` raw mode as the encoders read them. Only a frame with the pointer to
draw (or one for WebP) is unpacked into an RGB copy, and the pointer pasted onto that copy with
its alpha as the mask. Shrinking is ``Image.reduce`` by the largest whole factor (a box average)
then one bilinear step for what remains; a canvas is a paste onto black.

JPEG: Pillow's libjpeg-turbo encoder, writing into a memory file (memfd), because Pillow releases
the GIL only while it encodes into a file descriptor: a large frame's two halves are shrunk and
encoded on two cores at once and joined into one JPEG (``join_halves``: a restart marker between
the two scans). PNG: Pillow's raw encoder packs the RGB rows with a stride one byte longer than a
row, zero-padded, so each row's pad byte is the next row's filter byte; ISA-L deflates them as the
encoder hands them out, ~20x faster than zlib level 1 at a similar size. No buffer the size of a
frame is allocated per JPEG or PNG (on these VMs every fresh 4 KiB page costs a fault). WebP:
Pillow. No numpy: it would cost ~14 MiB of resident memory in every agent.

Not thread-safe: one ``Encoder`` per capture thread.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from isal import isal_zlib
from PIL import Image
from PIL import _imaging as pillow_core  # the codecs behind Image.save, driven directly (see _JpegSink)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# From this many frame pixels (720p: 0.92 M) a JPEG is made as two halves on two cores and joined.
SPLIT_MIN_PIXELS = 600_000
MCU = 16  # rows and columns of a 4:2:0 JPEG's minimum coded unit
SINK_KEEP_BYTES = 4 * 2**20  # a memory file grown past this by one large JPEG is emptied after it
CHUNK_BYTES = 65536  # what Pillow's encoders write at a time

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


@dataclass(frozen=True, slots=True)
class Picture:
    """An image and the raw mode that packs its pixels as RGB: ``BGR`` for a frame viewed in place
    (its BGRX pixels seen as an RGBX image: no copy), ``RGB`` for an RGB copy."""

    image: Image.Image
    rawmode: str


def source(frame: Frame, *, copy: bool = False) -> Picture:
    """The frame viewed in place, or (``copy``, or a sprite to draw) an RGB copy of its own
    with the sprite drawn on it: Pillow unpacks BGRX with the GIL released, and pastes the
    sprite with its alpha as the mask."""
    size = (frame.width, frame.height)
    sprite = frame.sprite
    if sprite is None and not copy:
        # (a zero-copy view: Pillow's stub says bytes, any buffer works)
        return Picture(Image.frombuffer("RGBX", size, frame.pixels, "raw", "RGBX", 0, 1), "BGR")  # type: ignore[arg-type]
    image = Image.new("RGB", size, None)  # not cleared: every pixel is written
    image.frombytes(frame.pixels, "raw", "BGRX")
    if sprite is not None:
        picture = Image.frombuffer("RGBA", (sprite.width, sprite.height), sprite.pixels, "raw", "BGRA", 0, 1)
        image.paste(picture, (sprite.left, sprite.top), picture)
    return Picture(image, "RGB")


def shrunk(
    picture: Picture, size: tuple[int, int], canvas: tuple[int, int, int, int] | None = None
) -> Picture:
    """``Image.reduce`` by the largest whole factor (each block averaged; the rows and columns past
    the last whole block are left out), one bilinear step for what remains, then the canvas
    (width, height, left, top): the image pasted there onto black. Channel order is kept."""
    image = picture.image
    width, height = image.size
    factor = reduction(width, height, size)
    if factor > 1:
        image = image.reduce(factor, (0, 0, width - width % factor, height - height % factor))
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    if canvas is not None:
        board = Image.new(image.mode, canvas[:2])
        board.paste(image, canvas[2:])
        image = board
    return Picture(image, picture.rawmode)


class _JpegSink:
    """A memory file (memfd) the JPEG encoder writes into: Pillow's encoder releases the GIL
    only while it writes into a file descriptor (not into a BytesIO), so the event loop and the
    other half's encoder run meanwhile. Pillow's own ``save`` cannot pack a BGRX view as RGB,
    hence its encoder is driven here as ``ImageFile._save`` drives it (the first three
    arguments of ``jpeg_encoder`` have been mode, raw mode, quality since PIL)."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.memfd_create("computer-agent-jpeg", os.MFD_CLOEXEC)
        except OSError:  # a seccomp filter without memfd_create: in memory, the GIL held
            self._fd = None

    def encode(self, picture: Picture, quality: int) -> bytes:
        image = picture.image
        chunk = max(CHUNK_BYTES, image.width * 4)
        encoder = pillow_core.jpeg_encoder(image.mode, picture.rawmode, quality)  # 4:2:0 by default
        try:
            encoder.setimage(image.im, (0, 0, *image.size))
            if self._fd is None:
                return _encoded_in_memory(encoder, chunk)
            os.lseek(self._fd, 0, os.SEEK_SET)
            status = encoder.encode_to_file(self._fd, chunk)
        finally:
            encoder.cleanup()
        if status < 0:
            raise OSError(f"the JPEG encoder failed ({status})")
        size = os.lseek(self._fd, 0, os.SEEK_CUR)
        data = os.pread(self._fd, size, 0)
        if size > SINK_KEEP_BYTES:
            os.ftruncate(self._fd, 0)
        return data

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _encoded_in_memory(encoder: Any, chunk: int) -> bytes:
    parts = []
    while True:
        _, status, data = encoder.encode(chunk)
        if status < 0:
            raise OSError(f"the JPEG encoder failed ({status})")
        parts.append(data)
        if status:
            return b"".join(parts)


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
        picture = shrunk(source(frame, copy=format == "webp"), size, canvas)
        width, height = picture.image.size
        if format == "jpeg":
            return Encoded(self._sink(0).encode(picture, quality), width, height)
        if format == "png":
            return Encoded(png_bytes(picture), width, height)
        out = io.BytesIO()
        picture.image.save(out, "WEBP", quality=quality, method=0)
        return Encoded(out.getvalue(), width, height)

    def _worth_splitting(self, frame: Frame) -> bool:
        return frame.width * frame.height >= SPLIT_MIN_PIXELS and (os.cpu_count() or 1) >= 2

    def _jpeg_halves(self, frame: Frame, factor: int, quality: int) -> bytes | None:
        """The bottom half is shrunk and encoded on the helper thread while this one does the
        top, and the two scans are joined into one JPEG with a restart marker between them:
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
        size = (frame.width // factor, frame.height // factor)
        return self._sink(sink).encode(shrunk(source(frame), size), quality)

    def _sink(self, index: int) -> _JpegSink:
        while len(self._sinks) <= index:  # both are made on the capture thread before a split
            self._sinks.append(_JpegSink())
        return self._sinks[index]

    def _helper_pool(self) -> ThreadPoolExecutor:
        self._sink(1)
        if self._helper is None:
            self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode-half")
        return self._helper


def png_bytes(picture: Picture) -> bytes:
    """A PNG file of the picture's pixels. Pillow's raw encoder packs them as RGB rows with a
    stride one byte longer than a row, zero-padded: each row's pad byte is the next row's
    filter byte (0, None), so the filtered rows are one zero byte, then the packed rows less
    their last byte. They are deflated (ISA-L) chunk by chunk as the encoder hands them out:
    no buffer of the whole frame is made (on these VMs each fresh 4 KiB page costs a fault)."""
    image = picture.image
    width, height = image.size
    stride = 1 + 3 * width
    encoder = pillow_core.raw_encoder(image.mode, picture.rawmode, stride)
    encoder.setimage(image.im, (0, 0, width, height))
    deflate = isal_zlib.compressobj(1)
    parts = [deflate.compress(b"\0")]
    chunk = max(CHUNK_BYTES, stride)  # whole rows each time; small enough for malloc to reuse
    while True:
        _, status, rows = encoder.encode(chunk)
        if status < 0:
            raise OSError(f"the raw encoder failed ({status})")
        if status:  # the last rows: the stream ends one pad byte early
            parts.append(deflate.compress(memoryview(rows)[:-1]))
            break
        parts.append(deflate.compress(rows))
    parts.append(deflate.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        (PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", b"".join(parts)), _chunk(b"IEND", b""))
    )


def _split(jpeg: bytes) -> tuple[bytes, bytes, memoryview] | None:
    """(the headers before SOS, the SOS segment, the entropy-coded scan: a view, not a copy) of
    a baseline JPEG as libjpeg-turbo writes it; None for anything else."""
    if jpeg[:2] != b"\xff\xd8" or jpeg[-2:] != b"\xff\xd9":
        return None
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF:
        marker, length = jpeg[at + 1], int.from_bytes(jpeg[at + 2 : at + 4], "big")
        if marker == 0xDA:
            return jpeg[:at], jpeg[at : at + 2 + length], memoryview(jpeg)[at + 2 + length : -2]
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
