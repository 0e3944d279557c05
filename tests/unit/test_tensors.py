"""uint8 pixels to model tensors and back, for every layout, dtype, range and channel order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from service.repository.config import ImageTensor
from service.runtimes.tensors import pixels_to_tensor, tensor_to_pixels

SPECS = [
    ImageTensor(name="x", layout=layout, dtype=dtype, value_range=rng, channel_order=order)  # type: ignore[arg-type]
    for layout, dtype, rng, order in itertools.product(
        ["NCHW", "NHWC"], ["float32", "float16"], [(0.0, 1.0), (0.0, 255.0), (-1.0, 1.0)], ["RGB", "BGR"]
    )
] + [ImageTensor(name="x", layout="NHWC", dtype="uint8", value_range=(0.0, 255.0))]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.layout}-{s.dtype}-{s.value_range}-{s.channel_order}")
def test_round_trip_is_exact(spec: ImageTensor) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    tensor = pixels_to_tensor(pixels, spec)
    assert tensor.flags.c_contiguous
    assert tensor.shape == ((2, 3, 5, 7) if spec.layout == "NCHW" else (2, 5, 7, 3))
    np.testing.assert_array_equal(tensor_to_pixels(tensor, spec), pixels)


def test_values_map_to_the_declared_range_and_order() -> None:
    spec = ImageTensor(name="x", value_range=(-1.0, 1.0), channel_order="BGR")
    pixels = np.array([[[[0, 128, 255]]]], np.uint8)
    tensor = pixels_to_tensor(pixels, spec)
    np.testing.assert_allclose(tensor[0, :, 0, 0], [1.0, 128 / 127.5 - 1, -1.0], atol=1e-6)


def test_out_of_range_outputs_are_clipped() -> None:
    spec = ImageTensor(name="y")
    tensor = np.array([-0.5, 0.2, 1.7], np.float32).reshape(1, 3, 1, 1)
    assert tensor_to_pixels(tensor, spec)[0, 0, 0].tolist() == [0, 51, 255]
