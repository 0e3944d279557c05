"""Bundled models: each `engines/*/model.toml` validates and its ONNX file runs at its scale."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import onnx
import pytest

from engines.tooling.benchmarks import bicubic_upscaler, set5_pairs
from engines.tooling.evaluate import onnx_upscaler, read_entry
from engines.tooling.export import MAX_IR_VERSION, cpu_session
from engines.tooling.metrics import psnr_y
from service.repository.loader import load_model_config
from tests.support.data import shared

ENGINES = Path(__file__).resolve().parents[2] / "engines"
CONFIGS = sorted(ENGINES.glob("*/model.toml"))
SUPERRES = [p for p in CONFIGS if tomllib.loads(p.read_text(encoding="utf-8")).get("task") == "superres"]


def test_the_bundled_scales_are_present() -> None:
    assert {p.parent.name for p in SUPERRES} >= {"sr-x2", "sr-x3", "sr-x4"}


@pytest.mark.parametrize("config_path", CONFIGS, ids=lambda p: p.parent.name)
def test_every_entry_validates(config_path: Path) -> None:
    loaded = load_model_config(config_path)
    assert loaded.config.name and loaded.folder == config_path.parent


@pytest.mark.parametrize("config_path", SUPERRES, ids=lambda p: p.parent.name)
def test_superres_onnx_runs_at_its_scale(config_path: Path) -> None:
    loaded = load_model_config(config_path)
    config = loaded.config
    onnx_path = loaded.file("onnx")
    assert onnx_path is not None and onnx_path.stat().st_size <= 2 * 1024 * 1024
    proto = onnx.load(str(onnx_path))
    assert proto.ir_version <= MAX_IR_VERSION and proto.opset_import[0].version >= 17
    convs = sum(1 for node in proto.graph.node if node.op_type == "Conv")
    assert config.tiling.overlap >= convs  # every 3x3 convolution widens the receptive field by 1
    batch = np.random.default_rng(0).random((2, 3, 21, 34), dtype=np.float32)
    (out,) = cpu_session(onnx_path).run([config.outputs[0].name], {config.inputs[0].name: batch})
    assert out.shape == (2, 3, 21 * config.scale, 34 * config.scale) and out.dtype == np.float32


def test_bundled_x2_beats_bicubic_on_a_set5_image() -> None:
    shared("sr/Set5_LR_bicubic/X2")
    pair = next(p for p in set5_pairs(shared("sr"), 2) if p.name == "butterfly")
    ours = psnr_y(onnx_upscaler(read_entry(ENGINES / "sr-x2"))(pair.lr), pair.hr, crop_border=2)
    bicubic = psnr_y(bicubic_upscaler(2)(pair.lr), pair.hr, crop_border=2)
    assert ours > bicubic + 2.0, (ours, bicubic)
