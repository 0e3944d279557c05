"""Training pieces: lossless data packs, aligned patch pairs, the schedule, a tiny end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.__main__ import main
from engines.tooling.images import write_rgb
from engines.tooling.imresize import imresize
from engines.training.data import MANIFEST, find_images, load_images, pack_images
from engines.training.sampler import PatchSampler
from engines.training.train import TrainConfig, learning_rate


def _smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A textured but natural-ish image: low-frequency colour fields plus a little noise."""
    yy, xx = np.mgrid[0:h, 0:w] / 9.0
    channels = [np.sin(yy * rng.uniform(0.3, 1.5) + xx * rng.uniform(0.3, 1.5) + rng.uniform(0, 6)) for _ in range(3)]
    image = 128 + 90 * np.stack(channels, axis=-1) + rng.normal(0, 6, (h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for folder, count in (("setA", 2), ("setB", 2)):
        (tmp_path / "src" / folder).mkdir(parents=True)
        for i in range(count):
            write_rgb(tmp_path / "src" / folder / f"im{i}.png", _smooth_image(rng, 70 + 9 * i, 90 - 5 * i))
    return tmp_path / "src"


def test_pack_is_lossless_and_keeps_the_folder_order(image_tree: Path, tmp_path: Path) -> None:
    manifest = pack_images(find_images(image_tree), tmp_path / "pack", shard_bytes=20_000)
    assert len(manifest) == 4 and len(list((tmp_path / "pack").glob("train-*.tar"))) >= 2
    packed, plain = load_images(tmp_path / "pack"), load_images(image_tree)
    assert len(packed) == len(plain) == 4
    assert all(np.array_equal(a, b) for a, b in zip(packed, plain, strict=True))


def test_a_corrupted_pack_is_refused(image_tree: Path, tmp_path: Path) -> None:
    pack_images(find_images(image_tree), tmp_path / "pack")
    manifest = json.loads((tmp_path / "pack" / MANIFEST).read_text())
    first = sorted(manifest)[0]
    manifest[first] = "0" * 64
    (tmp_path / "pack" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(RuntimeError, match="digest"):
        load_images(tmp_path / "pack")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_patch_pairs_are_aligned_and_flipped_together(image_tree: Path, scale: int) -> None:
    sampler = PatchSampler(load_images(image_tree), scale, lr_patch=16, device=torch.device("cpu"))
    lr, hr = sampler.sample(16, torch.Generator().manual_seed(0))
    assert lr.shape == (16, 3, 16, 16) and hr.shape == (16, 3, 16 * scale, 16 * scale)
    margin = 3  # LR pixels whose bicubic support lies inside the HR patch
    for lr_patch, hr_patch in zip(lr, hr, strict=True):
        hr_u8 = (hr_patch.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        expected = imresize(hr_u8, 1 / scale).astype(int)[margin:-margin, margin:-margin]
        actual = (lr_patch.permute(1, 2, 0).numpy() * 255).round().astype(int)[margin:-margin, margin:-margin]
        # Exact but for a transposed patch, where MATLAB's pass order (hence rounding) swaps.
        assert np.abs(actual - expected).max() <= 1


def test_too_small_images_are_skipped(image_tree: Path) -> None:
    sampler = PatchSampler(load_images(image_tree), 4, lr_patch=18, device=torch.device("cpu"))
    assert (len(sampler), sampler.skipped) == (2, 2)  # 79x85 images fit 72x72 HR patches, 70x90 ones do not


def test_schedule_warms_up_independently_of_the_length_then_decays() -> None:
    config = TrainConfig(scale=2, data=Path("."), out=Path("."), steps=10_000, lr=1e-3, warmup_steps=100)
    for step in (0, 50, 99):
        assert learning_rate(config, step, 10_000) == learning_rate(config, step, 3_000)
    assert learning_rate(config, 100, 10_000) == pytest.approx(1e-3)
    assert learning_rate(config, 10_000, 10_000) == pytest.approx(1e-5)
    assert learning_rate(config, 5_000, 10_000) < learning_rate(config, 2_000, 10_000)


def test_a_tiny_training_run_writes_weights_onnx_and_summary(image_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--scale",
            "2",
            "--data",
            str(image_tree),
            "--out",
            str(out),
            "--steps",
            "12",
            "--warmup-steps",
            "4",
            "--num-feat",
            "4",
            "--num-conv",
            "1",
            "--batch-size",
            "2",
            "--lr-patch",
            "16",
            "--log-every",
            "4",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_run"] == 12 and [h["step"] for h in summary["history"]] == [4, 8, 12]
    assert all(math.isfinite(h["l1"]) for h in summary["history"])
    assert summary["arch_args"]["num_feat"] == 4
    assert (out / "model.pth").is_file() and (out / "model.onnx").is_file()
