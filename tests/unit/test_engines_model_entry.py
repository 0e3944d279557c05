"""The model.toml writer produces entries the service's own validator accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.tooling.model_entry import SuperResEntry, overlap_for, write_model_toml
from service.repository.loader import load_model_config


@pytest.mark.parametrize(("radius", "overlap"), [(1, 8), (8, 8), (12, 16), (14, 16), (18, 24)])
def test_overlap_covers_the_receptive_field(radius: int, overlap: int) -> None:
    assert overlap_for(radius) == overlap >= radius


def test_written_entry_validates(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"placeholder")  # the loader checks that the file exists
    entry = SuperResEntry(
        name="sr-test-x3", description='quotes " and \\ survive', scale=3, receptive_radius=12, default=True
    )
    loaded = load_model_config(write_model_toml(tmp_path, entry))
    config = loaded.config
    assert (config.name, config.task, config.scale) == ("sr-test-x3", "superres", 3)
    assert config.description == 'quotes " and \\ survive'
    assert config.tiling.overlap == 16 and config.tiling.tile_size == 256
    assert config.superres is not None and config.superres.default
    assert [t.name for t in config.inputs] == ["input"] and [t.name for t in config.outputs] == ["output"]
    assert config.inputs[0].layout == "NCHW" and config.outputs[0].value_range == (0.0, 1.0)
