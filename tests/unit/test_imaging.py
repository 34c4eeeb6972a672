"""The encoder's shrinking: halving is a 2x2 box average of every channel, within rounding."""

from __future__ import annotations

import io

import numpy as np
import simplejpeg
from PIL import Image

from agent.desktop.imaging import Encoder, join_halves


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def test_half_and_quarter_scale_are_box_averages_of_the_pixels() -> None:
    rng = np.random.default_rng(7)
    bgrx = rng.integers(0, 256, (90, 161, 4), dtype=np.uint8)  # odd width: the last column is left out
    rgb = bgrx[..., 2::-1].astype(np.float64)
    for factor, size in ((2, (80, 45)), (4, (40, 22))):
        encoded = Encoder().encode(bgrx, format="png", quality=75, size=size)
        assert (encoded.width, encoded.height) == size
        height, width = size[1] * factor, size[0] * factor
        expected = rgb[:height, :width].reshape(size[1], factor, size[0], factor, 3).mean(axis=(1, 3))
        # Each halving rounds down once per axis: at most 1 per halving below the true mean.
        error = expected - decoded(encoded.data)
        assert error.min() >= -0.01 and error.max() <= 2 * (factor // 2) + 0.01, (
            factor,
            error.min(),
            error.max(),
        )


def test_a_size_between_halvings_and_a_letterbox() -> None:
    bgrx = np.zeros((100, 200, 4), dtype=np.uint8)
    bgrx[..., 1] = 200  # green everywhere
    encoded = Encoder().encode(bgrx, format="png", quality=75, size=(120, 60), canvas=(160, 100, 20, 20))
    image = decoded(encoded.data)
    assert image.shape == (100, 160, 3)
    assert (image[20:80, 20:140] == (0, 200, 0)).all()
    assert (image[:20] == 0).all() and (image[:, :20] == 0).all() and (image[80:] == 0).all()


def screen_like(height: int, width: int) -> np.ndarray:
    """Flat colours and small text-like blocks, as screens are (random noise would be the worst case)."""
    rng = np.random.default_rng(3)
    pixels = np.full((height, width, 4), 235, dtype=np.uint8)
    for _ in range(400):
        y, x = int(rng.integers(0, height - 12)), int(rng.integers(0, width - 90))
        pixels[y : y + 11, x : x + 88, :3] = rng.integers(0, 256, 3, dtype=np.uint8)
    return pixels


def test_a_large_jpeg_encoded_in_two_halves_decodes_as_the_whole() -> None:
    for height, width in ((1080, 1920), (1201, 1603)):  # whole MCUs and ragged edges
        pixels = screen_like(height, width)
        joined = Encoder().encode(pixels, format="jpeg", quality=75, size=(width, height))
        whole = simplejpeg.encode_jpeg(
            pixels, quality=75, colorspace="BGRX", colorsubsampling="420", fastdct=True
        )
        assert b"\xff\xdd" in joined.data and b"\xff\xdd" not in whole  # it was split
        ours, reference = decoded(joined.data), decoded(whole)
        assert ours.shape == (height, width, 3)
        assert np.abs(ours - reference).max() <= 1, (height, width)  # the same picture


def test_halves_with_other_tables_are_not_joined() -> None:
    top = simplejpeg.encode_jpeg(screen_like(128, 128), quality=75, colorspace="BGRX", colorsubsampling="420")
    bottom = simplejpeg.encode_jpeg(
        screen_like(128, 128), quality=50, colorspace="BGRX", colorsubsampling="420"
    )
    assert join_halves(top, bottom, 256, 64) is None
    assert join_halves(top, top, 256, 64) is not None
