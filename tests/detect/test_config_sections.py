"""`[detect]` and `[style]` in model.toml: a bad section names its file and field; tensor kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import ConfigError
from service.pipelines.warmup import warmup_inputs
from service.repository.loader import load_model_config
from tests.detect.models import write_tiny_yolo


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        ('decoder = "yolo"', 'decoder = "detr"', "detect.decoder"),
        ("input_size = [96, 64]", "input_size = [4, 64]", "input_size"),
        ('align = "center"', 'align = "middle"', "detect.align"),
        ("[detect]", "[detect]\nscore_threshold = 1.5", "detect.score_threshold"),
        ("[detect]", '[detect]\nlabels_file = "names.txt"', "labels or labels_file"),
        ('labels = ["circle", "square", "triangle"]', 'labels_file = "names.txt"', "names.txt"),
        ('decoder = "yolo"', 'decoder = "ssd"\nboxes_decoded = false', "detect.priors"),
        ('decoder = "yolo"', 'decoder = "ssd"', "outputs ['boxes', 'scores']"),
        ('kind = "tensor"', 'kind = "image"', "kind = 'tensor'"),
    ],
)
def test_a_bad_detect_section_is_named(tmp_path: Path, old: str, new: str, says: str) -> None:
    config = write_tiny_yolo(tmp_path) / "model.toml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as raised:
        load_model_config(config)
    assert str(config) in str(raised.value) and says in str(raised.value), str(raised.value)


def test_the_detect_section_is_required(tmp_path: Path) -> None:
    config = write_tiny_yolo(tmp_path) / "model.toml"
    text = config.read_text()
    config.write_text(text[: text.index("[detect]")] + text[text.index("[batching]") :])
    with pytest.raises(ConfigError, match=r"needs a \[detect\] section"):
        load_model_config(config)


def test_a_valid_detect_entry_loads_and_warms_up_at_its_input_size(tmp_path: Path) -> None:
    loaded = load_model_config(write_tiny_yolo(tmp_path) / "model.toml")
    section = loaded.config.detect
    assert section is not None and section.decoder == "yolo" and section.input_size == (96, 64)
    assert [o.kind for o in loaded.config.outputs] == ["tensor"]
    (image,) = warmup_inputs(loaded.config)
    assert image.shape == (1, 64, 96, 3)


def test_style_needs_its_section_and_an_image_output(tmp_path: Path) -> None:
    folder = tmp_path / "style-x"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"")
    base = """name = "style-x"
task = "style"
[files]
onnx = "model.onnx"
[[inputs]]
name = "input"
[[outputs]]
name = "output"
"""
    config = folder / "model.toml"
    config.write_text(base)
    with pytest.raises(ConfigError, match=r"needs a \[style\] section"):
        load_model_config(config)
    config.write_text(base + '[style]\nname = "Candy Floss"\n')
    with pytest.raises(ConfigError, match="style.name"):
        load_model_config(config)
    config.write_text(base.replace('name = "output"', 'name = "output"\nkind = "tensor"') + '[style]\nname = "candy"\n')
    with pytest.raises(ConfigError, match="image"):
        load_model_config(config)
    config.write_text(base + '[style]\nname = "candy"\n')
    assert load_model_config(config).config.style is not None
