"""The two-frame contract in model.toml, the tensor kind across the runtime contract, and the
classical runtime chosen for the bundled model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.errors import ConfigError
from service.pipelines.warmup import warmup_inputs
from service.repository.config import ImageTensor
from service.repository.loader import load_model_config
from service.runtimes.base import SlotPlacement
from service.runtimes.registry import choose_runtime
from service.runtimes.tensors import pixels_to_tensor, tensor_to_pixels
from tests.interpolate.models import copy_bundled_dis, write_rife_like


def test_tensor_kind_passes_through_the_conversion() -> None:
    step = ImageTensor(name="timestep", kind="tensor", dtype="float16")
    values = np.full((2, 1, 1, 1), 0.25, np.float32)
    converted = pixels_to_tensor(values, step)
    assert converted.dtype == np.float16 and converted.shape == (2, 1, 1, 1) and float(converted[0, 0, 0, 0]) == 0.25
    head = np.random.default_rng(0).standard_normal((1, 3549, 85)).astype(np.float32)
    assert tensor_to_pixels(head, ImageTensor(name="output", kind="tensor")) is not None
    np.testing.assert_array_equal(tensor_to_pixels(head, ImageTensor(name="output", kind="tensor")), head)


def test_the_bundled_classical_model_runs_on_the_classical_runtime(tmp_path: Path) -> None:
    loaded = load_model_config(copy_bundled_dis(tmp_path) / "model.toml")
    choice = choose_runtime(loaded, ["tensorrt", "torch", "onnxruntime"])
    assert choice.runtime.name == "classical"
    slot = choice.runtime.create_slot(loaded, SlotPlacement("cpu", 0, 1))
    try:
        inputs = warmup_inputs(loaded.config)
        assert [a.shape for a in inputs] == [(1, 256, 256, 3), (1, 256, 256, 3), (1, 1, 1, 1)]
        first = np.random.default_rng(1).integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
        second = np.roll(first, 3, axis=2)
        steps = np.array([0.0, 1.0], np.float32).reshape(2, 1, 1, 1)
        (out,) = slot.infer([first, second, steps])
        assert out.shape == (2, 40, 50, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out[0], first[0])  # t = 0 is frame 0, t = 1 frame 1
        np.testing.assert_array_equal(out[1], second[1])
    finally:
        slot.close()


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ('timestep_input = "timestep"', 'timestep_input = "t"', "timestep_input ['t']"),
        ('name = "img1"', 'name = "img1"\nkind = "tensor"', "two image inputs"),
        ('timestep_shape = "scalar"', 'timestep_shape = "vector"', "interpolate.timestep_shape"),
    ],
)
def test_a_bad_interpolate_section_is_named(tmp_path: Path, old: str, new: str, says: str) -> None:
    config = write_rife_like(tmp_path, "rife-x", "scalar") / "model.toml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as raised:
        load_model_config(config)
    assert says in str(raised.value), str(raised.value)


def test_the_interpolate_section_is_required(tmp_path: Path) -> None:
    config = write_rife_like(tmp_path, "rife-y", None) / "model.toml"
    config.write_text(config.read_text().replace("[interpolate]\n", "", 1))
    with pytest.raises(ConfigError, match=r"needs a \[interpolate\] section"):
        load_model_config(config)


def test_a_map_time_step_warms_up_as_a_full_plane(tmp_path: Path) -> None:
    loaded = load_model_config(write_rife_like(tmp_path, "rife-map", "map") / "model.toml")
    assert [a.shape for a in warmup_inputs(loaded.config)] == [(1, 64, 64, 3), (1, 64, 64, 3), (1, 1, 64, 64)]
