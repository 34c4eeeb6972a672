"""The encoder's shrinking: halving is a 2x2 box average of every channel, within rounding."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from agent.desktop.imaging import Encoder


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
        assert error.min() >= -0.01 and error.max() <= 2 * (factor // 2) + 0.01, (factor, error.min(), error.max())


def test_a_size_between_halvings_and_a_letterbox() -> None:
    bgrx = np.zeros((100, 200, 4), dtype=np.uint8)
    bgrx[..., 1] = 200  # green everywhere
    encoded = Encoder().encode(bgrx, format="png", quality=75, size=(120, 60), canvas=(160, 100, 20, 20))
    image = decoded(encoded.data)
    assert image.shape == (100, 160, 3)
    assert (image[20:80, 20:140] == (0, 200, 0)).all()
    assert (image[:20] == 0).all() and (image[:, :20] == 0).all() and (image[80:] == 0).all()
