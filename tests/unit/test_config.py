"""Model repository: a bad config names its file and field; a good one loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import ConfigError
from service.repository.loader import load_model_config, scan_repository
from tests.support.tiny_models import write_sr_entry


def test_a_valid_entry_loads(tmp_path: Path) -> None:
    write_sr_entry(tmp_path, "ok-x2", 2, tile_size=96, overlap=8)
    (loaded,) = scan_repository(tmp_path)
    assert loaded.config.name == "ok-x2" and loaded.config.scale == 2
    assert loaded.config.tiling.tile_size == 96
    assert loaded.file("onnx") == tmp_path / "ok-x2" / "model.onnx"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("scale = 2", "scale = 0", "superres.scale"),
        ("tile_size = 64", "tile_size = 'big'", "tiling.tile_size"),
        ('task = "superres"', 'task = "colourise"', "task"),
        ("max_batch_size = 8", "max_batch_size = 8\nbogus = 1", "batching.bogus"),
        ("overlap = 4", "overlap = 40", "tiling"),
        ('onnx = "model.onnx"', 'onnx = "missing.onnx"', "files.onnx"),
    ],
)
def test_a_bad_field_is_named_with_its_file(tmp_path: Path, old: str, new: str, field: str) -> None:
    folder = write_sr_entry(tmp_path, "bad-x2", 2)
    config = folder / "model.toml"
    config.write_text(config.read_text().replace(old, new, 1))
    with pytest.raises(ConfigError) as raised:
        load_model_config(config)
    assert str(config) in str(raised.value)
    assert f"'{field}" in str(raised.value)


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    folder = write_sr_entry(tmp_path, "bad-x2", 2)
    (folder / "model.toml").write_text("name = ")
    with pytest.raises(ConfigError, match="model.toml: cannot read"):
        scan_repository(tmp_path)


def test_duplicate_names_and_unknown_selection(tmp_path: Path) -> None:
    write_sr_entry(tmp_path, "a-x2", 2)
    with pytest.raises(ConfigError, match=r"no model named \['nope'\]"):
        scan_repository(tmp_path, ["nope"])
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.toml").write_text(
        (tmp_path / "a-x2" / "model.toml").read_text().replace('"model.onnx"', '"../a-x2/model.onnx"')
    )
    with pytest.raises(ConfigError, match="used twice"):
        scan_repository(tmp_path)


def test_empty_repository(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds no"):
        scan_repository(tmp_path)
