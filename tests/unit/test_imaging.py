"""The encoder: exact PNG rows, shrinking as box averages, the pointer blended with its alpha, and
a large JPEG made of two halves that decodes as the whole would. Checked by decoding with Pillow
and comparing against numpy's arithmetic on the same pixels (numpy is a test-only dependency)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from agent.desktop.imaging import Encoder, Frame, Sprite, join_halves


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def frame_of(bgrx: np.ndarray, sprite: Sprite | None = None) -> Frame:
    return Frame(memoryview(np.ascontiguousarray(bgrx).tobytes()), bgrx.shape[1], bgrx.shape[0], sprite)


def pillow_jpeg(rgb: np.ndarray) -> bytes:
    """The reference: one JPEG of the whole picture, encoded by Pillow in one piece."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb.astype(np.uint8))).save(
        out, "JPEG", quality=75, subsampling="4:2:0"
    )
    return out.getvalue()


def test_a_full_size_png_has_exactly_the_frame_pixels() -> None:
    rng = np.random.default_rng(5)
    bgrx = rng.integers(0, 256, (37, 101, 4), dtype=np.uint8)  # odd width: rows of 1 + 303 bytes
    encoded = Encoder().encode(frame_of(bgrx), format="png", quality=75, size=(101, 37))
    assert (decoded(encoded.data) == bgrx[..., 2::-1]).all()


def test_every_format_and_scale_keeps_the_colours() -> None:
    bgrx = np.zeros((64, 96, 4), dtype=np.uint8)
    bgrx[..., :3] = (10, 20, 200)  # BGR: a red
    for format in ("jpeg", "png", "webp"):
        for size in ((96, 64), (48, 32), (40, 27)):  # full, halved, halved then bilinear
            encoded = Encoder().encode(frame_of(bgrx), format=format, quality=90, size=size)
            image = decoded(encoded.data)
            assert image.shape == (size[1], size[0], 3), (format, size)
            assert np.abs(image - (200, 20, 10)).max() <= 4, (format, size)


def test_shrinking_by_whole_factors_is_a_box_average_of_the_pixels() -> None:
    rng = np.random.default_rng(7)
    bgrx = rng.integers(0, 256, (90, 161, 4), dtype=np.uint8)  # odd width: the last column is left out
    rgb = bgrx[..., 2::-1].astype(np.float64)
    for factor, size in ((2, (80, 45)), (3, (53, 30)), (4, (40, 22))):
        encoded = Encoder().encode(frame_of(bgrx), format="png", quality=75, size=size)
        assert (encoded.width, encoded.height) == size
        height, width = size[1] * factor, size[0] * factor
        expected = rgb[:height, :width].reshape(size[1], factor, size[0], factor, 3).mean(axis=(1, 3))
        error = np.abs(expected - decoded(encoded.data))
        assert error.max() < 1, (factor, error.max())  # one pass, rounded (Pillow: fixed point)


def test_a_size_between_halvings_and_a_letterbox() -> None:
    bgrx = np.zeros((100, 200, 4), dtype=np.uint8)
    bgrx[..., 1] = 200  # green everywhere
    encoded = Encoder().encode(
        frame_of(bgrx), format="png", quality=75, size=(120, 60), canvas=(160, 100, 20, 20)
    )
    image = decoded(encoded.data)
    assert image.shape == (100, 160, 3)
    assert (image[20:80, 20:140] == (0, 200, 0)).all()
    assert (image[:20] == 0).all() and (image[:, :20] == 0).all() and (image[80:] == 0).all()


def test_the_pointer_is_blended_with_its_alpha_and_clipped_at_the_edges() -> None:
    bgrx = np.full((40, 60, 4), 100, dtype=np.uint8)
    pointer = np.zeros((8, 8, 4), dtype=np.uint8)
    pointer[..., 2] = 255  # red (BGRA)
    pointer[:4, ..., 3] = 255  # opaque top half
    pointer[4:, ..., 3] = 128  # half-transparent bottom half
    sprite = Sprite(pointer.tobytes(), 8, 8, -3, 34)  # sticks out left and below
    encoded = Encoder().encode(frame_of(bgrx, sprite), format="png", quality=75, size=(60, 40))
    image = decoded(encoded.data)
    assert (image[34:38, 0:5] == (255, 0, 0)).all()
    half = np.array([(255 * 128 + 100 * 127) / 255, 100 * 127 / 255, 100 * 127 / 255])
    assert np.abs(image[38:40, 0:5] - half).max() <= 1
    assert (image[:34] == 100).all() and (image[34:, 5:] == 100).all()  # nothing else touched
    assert (np.frombuffer(frame_of(bgrx).pixels, dtype=np.uint8) == 100).all()  # the frame unchanged


def screen_like(height: int, width: int) -> np.ndarray:
    """Flat colours and small text-like blocks, as screens are (random noise would be the worst case)."""
    rng = np.random.default_rng(3)
    pixels = np.full((height, width, 4), 235, dtype=np.uint8)
    for _ in range(400):
        y, x = int(rng.integers(0, height - 12)), int(rng.integers(0, width - 90))
        pixels[y : y + 11, x : x + 88, :3] = rng.integers(0, 256, 3, dtype=np.uint8)
    return pixels


def test_a_large_jpeg_encoded_in_two_halves_decodes_as_the_whole() -> None:
    for height, width in ((1080, 1920), (1201, 1603), (720, 1280)):  # whole MCUs and ragged edges
        pixels = screen_like(height, width)
        joined = Encoder().encode(frame_of(pixels), format="jpeg", quality=75, size=(width, height))
        whole = pillow_jpeg(pixels[..., 2::-1])
        assert b"\xff\xdd" in joined.data and b"\xff\xdd" not in whole  # it was split
        ours, reference = decoded(joined.data), decoded(whole)
        assert ours.shape == (height, width, 3)
        assert np.abs(ours - reference).max() <= 1, (height, width)  # the same picture


def test_a_half_scale_jpeg_in_two_halves_is_the_halved_picture() -> None:
    height, width = 1080, 1920
    pixels = screen_like(height, width)
    joined = Encoder().encode(frame_of(pixels), format="jpeg", quality=75, size=(960, 540))
    assert b"\xff\xdd" in joined.data and (joined.width, joined.height) == (960, 540)
    halved = Image.fromarray(np.ascontiguousarray(pixels[..., 2::-1])).reduce(2)
    assert np.abs(decoded(joined.data) - decoded(pillow_jpeg(np.asarray(halved)))).max() <= 1


def test_the_pointer_across_the_seam_of_the_halves_is_drawn_on_both() -> None:
    pixels = np.full((1080, 1920, 4), 235, dtype=np.uint8)
    pointer = np.zeros((32, 32, 4), dtype=np.uint8)
    pointer[..., 0] = 255  # opaque blue (BGRA)
    pointer[..., 3] = 255
    joined = Encoder().encode(
        frame_of(pixels, Sprite(pointer.tobytes(), 32, 32, 100, 528)),  # the top half ends at row 544
        format="jpeg",
        quality=75,
        size=(1920, 1080),
    )
    assert b"\xff\xdd" in joined.data
    image = decoded(joined.data)
    for row in (532, 543, 544, 556):
        blue = image[row, 104:128]
        assert (blue[:, 2] > 220).all() and (blue[:, :2] < 40).all(), row
    assert (np.abs(image[500:520] - 235) <= 2).all() and (np.abs(image[570:] - 235) <= 2).all()


def test_halves_with_other_tables_are_not_joined() -> None:
    def jpeg(quality: int) -> bytes:
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(screen_like(128, 128)[..., :3])).save(
            out, "JPEG", quality=quality
        )
        return out.getvalue()

    top, bottom = jpeg(75), jpeg(50)
    assert join_halves(top, bottom, 256, 64) is None
    assert join_halves(top, top, 256, 64) is not None


def test_without_memfd_the_jpeg_is_encoded_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A seccomp filter may refuse memfd_create: the JPEG is then the same, made in memory."""
    pixels = screen_like(720, 1280)
    expected = Encoder().encode(frame_of(pixels), format="jpeg", quality=75, size=(1280, 720)).data

    def refused(*args: object) -> int:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "memfd_create", refused)
    assert Encoder().encode(frame_of(pixels), format="jpeg", quality=75, size=(1280, 720)).data == expected
