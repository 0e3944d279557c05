"""MATLAB bicubic imresize: bit-exact against the shipped Set5 LR files, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from engines.tooling.images import list_images, mod_crop, read_rgb
from engines.tooling.imresize import imresize, imresize_torch, resize_weights
from tests.support.data import shared


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_reproduces_the_shipped_set5_lr_images_exactly(scale: int) -> None:
    hr_folder = shared("sr/Set5")
    lr_folder = shared(f"sr/Set5_LR_bicubic/X{scale}")
    for path in list_images(hr_folder):
        expected = read_rgb(lr_folder / f"{path.stem}x{scale}.png")
        actual = imresize(mod_crop(read_rgb(path), scale), 1 / scale)
        assert actual.shape == expected.shape, path.name
        assert np.array_equal(actual, expected), f"{path.name} x{scale}: {np.abs(actual.astype(int) - expected).max()}"


def test_rounding_between_passes_is_what_matlab_does() -> None:
    # Rounding once at the end (float pipeline) misses MATLAB's output on some pixels.
    hr = mod_crop(read_rgb(shared("sr/Set5/butterfly.png")), 2)
    expected = read_rgb(shared("sr/Set5_LR_bicubic/X2/butterflyx2.png"))
    float_once = np.clip(np.floor(imresize(hr.astype(np.float64), 0.5) + 0.5), 0, 255).astype(np.uint8)
    assert not np.array_equal(float_once, expected)
    assert np.array_equal(imresize(hr, 0.5), expected)


def test_torch_version_matches_numpy_on_uint8_data() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (37, 50, 3), dtype=np.uint8)
    for scale in (1 / 2, 1 / 3, 1 / 4, 2, 3):
        expected = imresize(image, scale)
        batch = torch.from_numpy(image).permute(2, 0, 1)[None].double()
        actual = imresize_torch(batch, scale, round_between_passes=True)[0].permute(1, 2, 0).numpy()
        assert np.array_equal(actual.astype(np.uint8), expected), scale


@given(
    in_len=st.integers(min_value=4, max_value=300),
    scale=st.sampled_from([1 / 4, 1 / 3, 1 / 2, 2.0, 3.0, 4.0, 0.37, 1.7]),
)
def test_weights_are_normalised_and_keep_a_constant_image(in_len: int, scale: float) -> None:
    out_len = int(np.ceil(in_len * scale))
    weights = resize_weights(in_len, out_len, scale)
    assert weights.shape == (out_len, in_len)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    constant = np.full((in_len, 3), 77, dtype=np.uint8)
    assert np.all(imresize(constant, scale) == 77)


def test_upscaling_size_is_scale_times_input() -> None:
    image = np.zeros((10, 7, 3), np.uint8)
    assert imresize(image, 4).shape == (40, 28, 3)
    assert imresize(image, 0.5).shape == (5, 4, 3)  # MATLAB rounds the size up
