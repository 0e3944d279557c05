"""The recipes of the bundled models, and the job that trains them together on one GPU.

`train_all` starts one `python -m engines train` process per scale at the same time (the GPU is
shared; 16 CPU cores feed it), each with the same time budget, then gathers each run's
`model.pth`, `model.onnx`, log and summary under one output folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Recipe:
    """Per-scale network size and patch geometry (other settings are TrainConfig defaults)."""

    num_feat: int
    num_conv: int
    lr_patch: int
    batch_size: int = 64


RECIPES: dict[int, Recipe] = {
    2: Recipe(num_feat=32, num_conv=12, lr_patch=64),  # ~115k MAC per LR pixel: fast on CPU
    3: Recipe(num_feat=48, num_conv=10, lr_patch=48),
    4: Recipe(num_feat=48, num_conv=10, lr_patch=48),
}


def train_command(
    scale: int, data: Path, eval_data: Path | None, out: Path, steps: int, seed: int, budget_s: float | None = None
) -> list[str]:
    """The `python -m engines train` command line for the bundled model of `scale`."""
    r = RECIPES[scale]
    command = [
        sys.executable,
        "-m",
        "engines",
        "train",
        "--scale",
        str(scale),
        "--data",
        str(data),
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--seed",
        str(seed),
        "--num-feat",
        str(r.num_feat),
        "--num-conv",
        str(r.num_conv),
        "--lr-patch",
        str(r.lr_patch),
        "--batch-size",
        str(r.batch_size),
    ]
    if eval_data is not None:
        command += ["--eval-data", str(eval_data)]
    if budget_s is not None:
        command += ["--time-budget-s", str(budget_s)]
    return command


def train_all(
    scales: list[int],
    data: Path,
    eval_data: Path | None,
    out: Path,
    max_steps: int,
    budget_s: float,
    seed: int = 0,
    work: Path = Path("/tmp/engines-train"),
) -> dict[str, object]:
    """Train `scales` concurrently; copy weights, ONNX, logs and summaries into `out`."""
    started = time.perf_counter()
    procs = {}
    for scale in scales:
        run_dir = work / f"x{scale}"
        run_dir.mkdir(parents=True, exist_ok=True)
        command = train_command(scale, data, eval_data, run_dir, max_steps, seed, budget_s)
        log = (run_dir / "train.log").open("w")
        log.write("$ " + " ".join(command) + "\n")
        log.flush()
        procs[scale] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)
    codes = {scale: proc.wait() for scale, (proc, _) in procs.items()}
    for _, log in procs.values():
        log.close()
    return _collect(scales, work, out, codes, time.perf_counter() - started)


def _collect(scales: list[int], work: Path, out: Path, codes: dict[int, int], wall_s: float) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, object] = {"wall_s": round(wall_s, 1), "exit_codes": codes}
    with (out / "train.log").open("w") as combined:
        for scale in scales:
            run_dir = work / f"x{scale}"
            combined.write(f"===== x{scale} (exit {codes[scale]}) =====\n")
            combined.write((run_dir / "train.log").read_text())
            for name in ("model.pth", "model.onnx"):
                if (run_dir / name).is_file():
                    (out / f"x{scale}").mkdir(exist_ok=True)
                    shutil.copy(run_dir / name, out / f"x{scale}" / name)
            if (run_dir / "summary.json").is_file():
                summary[f"x{scale}"] = json.loads((run_dir / "summary.json").read_text())
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
