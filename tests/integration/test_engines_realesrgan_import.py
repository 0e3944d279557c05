"""Real-ESRGAN import: the third-party checkpoint loads strictly, exports, and matches PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engines.__main__ import main
from engines.archs import SRVGGNetCompact
from engines.tooling.export import cpu_session, export_onnx, load_state_dict, verify_onnx
from engines.tooling.images import center_crop, read_rgb
from engines.tooling.realesrgan import srvgg_from_state_dict
from service.repository.loader import load_model_config
from tests.support.data import shared

CHECKPOINT = "models/superres/realesr-animevideov3.pth"
CROP = 128


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    """128x128 centre crops of three real photographs."""
    folder = shared("images")
    return [center_crop(read_rgb(folder / name), CROP) for name in ("astronaut.png", "chelsea.png", "bus.jpg")]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder `python -m engines import-realesrgan` writes."""
    out = tmp_path_factory.mktemp("repo") / "realesr-animevideov3"
    weights = shared(CHECKPOINT)
    assert (
        main(["import-realesrgan", "--weights", str(weights), "--out-dir", str(out), "--name", "realesr-animevideov3"])
        == 0
    )
    return out


def test_checkpoint_loads_strictly_into_the_documented_architecture() -> None:
    state = load_state_dict(shared(CHECKPOINT))
    reference = SRVGGNetCompact(3, 3, 64, 16, 4, "prelu")
    reference.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
    inferred = srvgg_from_state_dict(state)
    assert inferred.upscale == 4 and inferred.receptive_radius == 18
    assert sum(p.numel() for p in inferred.parameters()) == 621_424
    bad = dict(state, extra=torch.zeros(1))
    with pytest.raises(RuntimeError, match="Unexpected key"):
        reference.load_state_dict(bad, strict=True)


def test_onnxruntime_matches_pytorch_on_real_images(crops: list[np.ndarray], tmp_path: Path) -> None:
    model = srvgg_from_state_dict(load_state_dict(shared(CHECKPOINT)))
    path = export_onnx(model, tmp_path / "model.onnx")
    report = verify_onnx(model, path, crops)
    assert report.images == 3
    assert report.psnr_db >= 50.0, report
    assert report.max_abs_error < 1e-2, report


def test_import_writes_a_valid_repository_entry(imported: Path, crops: list[np.ndarray]) -> None:
    loaded = load_model_config(imported / "model.toml")
    config = loaded.config
    assert (config.name, config.task, config.scale) == ("realesr-animevideov3", "superres", 4)
    assert config.superres is not None and not config.superres.default  # bundled models stay the defaults
    assert config.tiling.overlap >= 18  # receptive-field radius of 18 convolutions
    onnx_path = loaded.file("onnx")
    assert onnx_path is not None and onnx_path.parent == imported
    batch = np.stack([c.transpose(2, 0, 1) for c in crops[:2]]).astype(np.float32)[:, :, :40, :48] / 255
    (out,) = cpu_session(onnx_path).run([config.outputs[0].name], {config.inputs[0].name: batch})
    assert out.shape == (2, 3, 160, 192)
    assert 0.02 < float(np.clip(out, 0, 1).mean()) < 0.98  # an image, not zeros or saturation
