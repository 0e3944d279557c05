"""Train one bundled super-resolution model (SRVGGNetCompact in LR space, L1 loss).

Adam with a linear warm-up and cosine decay, MATLAB-bicubic LR patches, random flips and
transposes; bf16 autocast and channels-last on CUDA. With `time_budget_s`, the number of steps
is fixed during warm-up (which does not depend on it) from the measured step rate, so the run
equals one started with `--steps <that number>`; the log says which number was used.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engines.archs import SRVGGNetCompact
from engines.tooling.benchmarks import SRPair, bicubic_upscaler, mean_psnr_y, set5_pairs
from engines.tooling.export import export_onnx, verify_onnx
from engines.tooling.images import from_nchw, to_nchw
from engines.training.data import load_images
from engines.training.sampler import PatchSampler

log = logging.getLogger("engines.train")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (written to the run's summary)."""

    scale: int
    data: Path
    out: Path
    steps: int
    seed: int = 0
    num_feat: int = 32
    num_conv: int = 12
    batch_size: int = 64
    lr_patch: int = 64
    lr: float = 1e-3
    warmup_steps: int = 1000
    eval_data: Path | None = None
    log_every: int = 1000
    device: str = "auto"
    time_budget_s: float | None = None
    export: bool = True


@dataclass
class _Progress:
    steps: int
    losses: list[torch.Tensor] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def build_model(config: TrainConfig) -> SRVGGNetCompact:
    """The network trained for `config`; the last convolution starts small so the start is bicubic-like."""
    model = SRVGGNetCompact(3, 3, config.num_feat, config.num_conv, config.scale, "prelu")
    last = model.body[-1]
    assert isinstance(last, nn.Conv2d)
    with torch.no_grad():
        last.weight.mul_(0.1)
        last.bias.zero_()
    return model


def learning_rate(config: TrainConfig, step: int, total: int) -> float:
    """Linear warm-up to `config.lr`, then cosine decay to 1% of it at step `total`."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total - config.warmup_steps)
    return config.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _steps_from_rate(config: TrainConfig, started: float, step: int, measured_from: tuple[float, int]) -> int:
    """Steps that fit the time budget at the rate measured since `measured_from`."""
    assert config.time_budget_s is not None
    t0, s0 = measured_from
    rate = (step - s0) / (time.perf_counter() - t0)
    left = config.time_budget_s - (time.perf_counter() - started)
    fits = step + int(0.92 * left * rate)
    chosen = min(config.steps, max(config.warmup_steps, fits // 1000 * 1000))
    log.info("measured %.1f steps/s; %.0f s left; steps fixed at %d (max %d)", rate, left, chosen, config.steps)
    return chosen


def _train_loop(config: TrainConfig, model: nn.Module, sampler: PatchSampler, device: torch.device) -> _Progress:
    generator = torch.Generator(device=device).manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.99), fused=device.type == "cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    progress = _Progress(steps=config.steps)
    started = time.perf_counter()
    calibrate_at = (config.warmup_steps // 4, config.warmup_steps - 1) if config.time_budget_s else None
    measured_from = (started, 0)
    step = 0
    while step < progress.steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step, progress.steps)
        lr_batch, hr_batch = sampler.sample(config.batch_size, generator)
        with autocast:
            sr = model(lr_batch.contiguous(memory_format=torch.channels_last))
        loss = torch.nn.functional.l1_loss(sr.float(), hr_batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        progress.losses.append(loss.detach())  # read back (a device sync) only in _log_step
        step += 1
        if calibrate_at and step == calibrate_at[0]:
            loss.item()  # wait for the device so the rate is measured from here
            measured_from = (time.perf_counter(), step)
        if calibrate_at and step == calibrate_at[1]:
            progress.steps = _steps_from_rate(config, started, step, measured_from)
        if step % config.log_every == 0 or step == progress.steps:
            _log_step(progress, step, optimizer.param_groups[0]["lr"], started)
        if config.time_budget_s and time.perf_counter() - started > 1.05 * config.time_budget_s:
            log.warning("time budget exceeded: stopped at step %d of %d", step, progress.steps)
            progress.stopped_early, progress.steps = True, step
    return progress


def _log_step(progress: _Progress, step: int, lr: float, started: float) -> None:
    mean_loss = float(torch.stack(progress.losses).mean()) if progress.losses else float("nan")
    progress.losses.clear()
    elapsed = time.perf_counter() - started
    progress.history.append({"step": step, "l1": mean_loss, "lr": lr, "elapsed_s": round(elapsed, 1)})
    log.info("step %6d/%d  l1 %.5f  lr %.2e  %.0f s", step, progress.steps, mean_loss, lr, elapsed)


def torch_upscaler(model: nn.Module, device: torch.device):  # type: ignore[no-untyped-def]
    """uint8 RGB LR -> uint8 RGB SR through `model` in float32 (clipped and rounded)."""

    def run(lr: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model(torch.from_numpy(to_nchw(lr)).to(device)).float().cpu().numpy()
        return from_nchw(out)

    return run


def _evaluate(model: nn.Module, pairs: list[SRPair], scale: int, device: torch.device) -> dict[str, float]:
    model.eval()
    ours = mean_psnr_y(torch_upscaler(model, device), pairs, scale)
    bicubic = mean_psnr_y(bicubic_upscaler(scale), pairs, scale)
    log.info("Set5 x%d PSNR-Y: ours %.3f dB, bicubic %.3f dB", scale, ours, bicubic)
    return {"set5_psnr_y": round(ours, 4), "set5_bicubic_psnr_y": round(bicubic, 4)}


def train(config: TrainConfig) -> dict[str, Any]:
    """Run the training of `config`; write model.pth, model.onnx and summary.json to `config.out`."""
    config.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    device = _device(config.device)
    torch.backends.cudnn.benchmark = True
    started = time.perf_counter()
    sampler = PatchSampler(load_images(config.data), config.scale, config.lr_patch, device)
    log.info(
        "x%d: %d training images (%d too small), data ready in %.1f s on %s",
        config.scale,
        len(sampler),
        sampler.skipped,
        time.perf_counter() - started,
        device,
    )
    model = build_model(config).to(device).to(memory_format=torch.channels_last).train()
    log.info("model: %s, %d parameters", _arch_args(config), sum(p.numel() for p in model.parameters()))
    progress = _train_loop(config, model, sampler, device)
    summary: dict[str, Any] = {
        "config": {k: str(v) for k, v in asdict(config).items()},
        "arch": "srvgg",
        "arch_args": _arch_args(config),
        "steps_run": progress.steps,
        "stopped_early": progress.stopped_early,
        "train_wall_s": round(time.perf_counter() - started, 1),
        "history": progress.history,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    summary.update(_finish(config, model.float().to(memory_format=torch.contiguous_format).eval(), device))
    (config.out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def _finish(config: TrainConfig, model: nn.Module, device: torch.device) -> dict[str, Any]:
    """Score on Set5, save the weights, export and check the ONNX file (errors logged, not raised)."""
    results: dict[str, Any] = {}
    pairs = set5_pairs(config.eval_data, config.scale) if config.eval_data is not None else []
    if pairs:
        torch.backends.cudnn.allow_tf32 = False  # score in full float32, as onnxruntime runs
        results.update(_evaluate(model, pairs, config.scale, device))
    model = model.cpu()
    torch.save(
        {"params": model.state_dict(), "arch": "srvgg", "arch_args": _arch_args(config)}, config.out / "model.pth"
    )
    if not config.export:
        return results
    try:
        path = export_onnx(model, config.out / "model.onnx")
        if pairs:
            report = verify_onnx(model, path, [p.lr for p in pairs])
            results["onnx_check"] = {"max_abs_error": report.max_abs_error, "psnr_db": report.psnr_db}
    except Exception as exc:  # the weights are saved; export can be redone with `python -m engines export`
        log.exception("ONNX export or check failed")
        results["onnx_error"] = repr(exc)
    return results


def _arch_args(config: TrainConfig) -> dict[str, Any]:
    return {
        "num_in_ch": 3,
        "num_out_ch": 3,
        "num_feat": config.num_feat,
        "num_conv": config.num_conv,
        "upscale": config.scale,
        "act_type": "prelu",
    }
