"""ONNX export round trip: tiny random networks of each architecture, PyTorch vs onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from engines.__main__ import main
from engines.archs import RRDBNet, SRVGGNetCompact
from engines.tooling.export import MAX_IR_VERSION, cpu_session, export_onnx, fixed_input_side, verify_onnx
from engines.tooling.images import write_rgb

TINY: dict[str, tuple[type[nn.Module], dict[str, object], int]] = {
    "srvgg-x2": (SRVGGNetCompact, {"num_feat": 6, "num_conv": 2, "upscale": 2}, 2),
    "srvgg-x3-relu": (SRVGGNetCompact, {"num_feat": 6, "num_conv": 1, "upscale": 3, "act_type": "relu"}, 3),
    "srvgg-x4": (SRVGGNetCompact, {"num_feat": 6, "num_conv": 2, "upscale": 4}, 4),
    "rrdbnet-x4": (RRDBNet, {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 4}, 4),
    "rrdbnet-x2": (RRDBNet, {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 2}, 2),
}


def _tiny(name: str) -> tuple[nn.Module, int]:
    cls, kwargs, scale = TINY[name]
    torch.manual_seed(0)
    return cls(**kwargs).eval(), scale


def _assert_valid_file(path: Path) -> None:
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version <= MAX_IR_VERSION
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["output"]


def _run_both(model: nn.Module, path: Path, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    (actual,) = cpu_session(path).run(["output"], {"input": batch})
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    return actual, expected


@pytest.mark.parametrize("name", sorted(TINY))
def test_dynamic_export_matches_pytorch_at_several_shapes(name: str, tmp_path: Path) -> None:
    model, scale = _tiny(name)
    path = export_onnx(model, tmp_path / "model.onnx", opset=17)
    _assert_valid_file(path)
    assert fixed_input_side(path) is None
    rng = np.random.default_rng(0)
    for shape in ((1, 3, 16, 20), (2, 3, 12, 8)):
        actual, expected = _run_both(model, path, rng.random(shape, dtype=np.float32))
        assert actual.shape == (shape[0], 3, shape[2] * scale, shape[3] * scale)
        np.testing.assert_allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize("name", ["srvgg-x2", "rrdbnet-x4"])
def test_fixed_tile_export_keeps_batch_dynamic_and_fixes_the_side(name: str, tmp_path: Path) -> None:
    model, scale = _tiny(name)
    path = export_onnx(model, tmp_path / "tile.onnx", tile=24, opset=18)
    _assert_valid_file(path)
    assert fixed_input_side(path) == 24
    actual, expected = _run_both(model, path, np.random.default_rng(1).random((3, 3, 24, 24), dtype=np.float32))
    assert actual.shape == (3, 3, 24 * scale, 24 * scale)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        cpu_session(path).run(["output"], {"input": np.zeros((1, 3, 20, 24), np.float32)})


def test_old_opsets_are_refused(tmp_path: Path) -> None:
    model, _ = _tiny("srvgg-x2")
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, tmp_path / "old.onnx", opset=13)


def test_verify_reports_agreement_on_images(tmp_path: Path) -> None:
    model, _ = _tiny("srvgg-x4")
    path = export_onnx(model, tmp_path / "model.onnx")
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (20, 28, 3), dtype=np.uint8) for _ in range(2)]
    report = verify_onnx(model, path, images)
    assert report.images == 2 and report.max_abs_error < 1e-5 and report.psnr_db > 100


def test_export_command_loads_weights_strictly_and_checks_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, _ = _tiny("srvgg-x2")
    torch.save({"params": model.state_dict()}, tmp_path / "weights.pth")
    images = tmp_path / "images"
    images.mkdir()
    write_rgb(images / "a.png", np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    code = main(
        [
            "export",
            "--arch",
            "srvgg",
            "--weights",
            str(tmp_path / "weights.pth"),
            "--arch-args",
            "num_feat=6",
            "num_conv=2",
            "upscale=2",
            "--out",
            str(tmp_path / "out.onnx"),
            "--tile",
            "32",
            "--check-images",
            str(images),
        ]
    )
    assert code == 0 and fixed_input_side(tmp_path / "out.onnx") == 32
    assert "PSNR" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="size mismatch"):  # wrong architecture arguments
        main(
            [
                "export",
                "--arch",
                "srvgg",
                "--weights",
                str(tmp_path / "weights.pth"),
                "--arch-args",
                "num_feat=8",
                "num_conv=2",
                "upscale=2",
                "--out",
                str(tmp_path / "bad.onnx"),
            ]
        )


def test_prelu_is_exported_branch_free_and_equal(tmp_path: Path) -> None:
    torch.manual_seed(4)
    model = SRVGGNetCompact(3, 3, 6, 2, 2, "prelu").eval()
    with torch.no_grad():  # slopes on both sides of 0 and 1, as trained networks have
        for module in model.modules():
            if isinstance(module, nn.PReLU):
                module.weight.copy_(torch.linspace(-0.8, 1.6, module.num_parameters))
    path = export_onnx(model, tmp_path / "model.onnx")
    assert "PRelu" not in {node.op_type for node in onnx.load(str(path)).graph.node}
    actual, expected = _run_both(model, path, np.random.default_rng(5).random((1, 3, 17, 23), dtype=np.float32) - 0.5)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    assert isinstance(model.body[1], nn.PReLU)  # the caller's model is left as it was
    scalar = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.PReLU(), nn.PixelShuffle(1)).eval()
    with torch.no_grad():
        scalar[1].weight.fill_(-0.3)
    actual, expected = _run_both(
        scalar,
        export_onnx(scalar, tmp_path / "scalar.onnx"),
        np.random.default_rng(6).random((1, 3, 9, 9), dtype=np.float32) - 0.5,
    )
    np.testing.assert_allclose(actual, expected, atol=1e-6)
