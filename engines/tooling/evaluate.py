"""Score repository models (ONNX, through onnxruntime) against bicubic and published figures.

Writes a Markdown table: PSNR-Y per benchmark set and scale for each model, the MATLAB bicubic
baseline, and the published FSRCNN / ESPCN Set5 figures with their sources.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.tooling.benchmarks import Upscaler, bicubic_upscaler, mean_psnr_y, set5_pairs, synthetic_pairs
from engines.tooling.export import cpu_session
from engines.tooling.images import from_nchw, to_nchw

# Set5 PSNR-Y (dB) as published; keys are scales.
FSRCNN_SET5 = {2: 37.00, 3: 33.16, 4: 30.71}
ESPCN_SET5 = {2: 36.64, 3: 32.55, 4: 30.90}
CITATIONS = (
    "FSRCNN: Dong, Loy, Tang, *Accelerating the Super-Resolution Convolutional Neural Network*, "
    "ECCV 2016, comparison table on Set5 (x2, x3, x4).",
    "ESPCN x3, x4: Shi et al., *Real-Time Single Image and Video Super-Resolution Using an "
    "Efficient Sub-Pixel Convolutional Neural Network*, CVPR 2016, results on Set5. ESPCN x2 (36.64) "
    "is not from that paper, which reports x3 and x4 only: it is a figure from later re-implementations, "
    "taken as given in issue 3 and not verified here.",
)
SYNTHETIC_SETS = ("BSD100_subset", "Urban100_subset")


@dataclass(frozen=True)
class RepoModel:
    """The parts of a repository entry evaluation needs."""

    name: str
    scale: int
    onnx_path: Path
    input_name: str
    output_name: str


@dataclass(frozen=True)
class Score:
    """Mean PSNR-Y of one model (or baseline) on one set at one scale."""

    dataset: str
    scale: int
    model: str
    psnr_y: float
    images: int


def read_entry(folder: Path) -> RepoModel:
    """Read `folder/model.toml` of a superres entry with a float32 NCHW [0, 1] ONNX file."""
    raw = tomllib.loads((folder / "model.toml").read_text(encoding="utf-8"))
    if raw.get("task") != "superres":
        raise ValueError(f"{folder}: task is {raw.get('task')!r}, not 'superres'")
    return RepoModel(
        raw["name"],
        int(raw["superres"]["scale"]),
        folder / raw["files"]["onnx"],
        raw["inputs"][0]["name"],
        raw["outputs"][0]["name"],
    )


def onnx_upscaler(model: RepoModel) -> Upscaler:
    """uint8 RGB -> uint8 RGB through the model's ONNX file on the CPU, whole image at once."""
    session = cpu_session(model.onnx_path)

    def run(lr: np.ndarray) -> np.ndarray:
        (out,) = session.run([model.output_name], {model.input_name: to_nchw(lr)})
        return from_nchw(out)

    return run


def _pairs(data: Path, dataset: str, scale: int) -> list:  # type: ignore[type-arg]
    return set5_pairs(data, scale) if dataset == "Set5" else synthetic_pairs(data / dataset, scale)


def evaluate(models: Sequence[RepoModel], data: Path) -> list[Score]:
    """Scores of every model and of bicubic on Set5 and the synthetic-LR sets at each model's scale."""
    scores: list[Score] = []
    for scale in sorted({m.scale for m in models}):
        for dataset in ("Set5", *SYNTHETIC_SETS):
            if not (data / dataset).is_dir():
                continue
            pairs = _pairs(data, dataset, scale)
            bicubic = mean_psnr_y(bicubic_upscaler(scale), pairs, scale)
            scores.append(Score(dataset, scale, "bicubic", bicubic, len(pairs)))
            for model in (m for m in models if m.scale == scale):
                ours = mean_psnr_y(onnx_upscaler(model), pairs, scale)
                scores.append(Score(dataset, scale, model.name, ours, len(pairs)))
    return scores


def render_markdown(scores: Sequence[Score], command: str) -> str:
    """A Markdown table of `scores` with the published Set5 figures, sources and the command."""
    lines = [
        "| set (images) | scale | ours: model | ours PSNR-Y | bicubic | FSRCNN [1] | ESPCN [2] |",
        "|---|---|---|---|---|---|---|",
    ]
    for (dataset, scale), group in _grouped(scores).items():
        bicubic = next(s.psnr_y for s in group if s.model == "bicubic")
        for s in (s for s in group if s.model != "bicubic"):
            fsrcnn = f"{FSRCNN_SET5[scale]:.2f}" if dataset == "Set5" and scale in FSRCNN_SET5 else "—"
            espcn = f"{ESPCN_SET5[scale]:.2f}" if dataset == "Set5" and scale in ESPCN_SET5 else "—"
            lines.append(
                f"| {dataset} ({s.images}) | x{scale} | {s.model} | **{s.psnr_y:.2f}** "
                f"| {bicubic:.2f} | {fsrcnn} | {espcn} |"
            )
    notes = [
        "PSNR-Y in dB: BT.601 luma (16..235) of 8-bit RGB, `scale` pixels of border cropped, mean over images.",
        "Set5 inputs are the shipped MATLAB-bicubic LR files; BSD100/Urban100 subset inputs are made with "
        "our bit-exact MATLAB `imresize` (antialiased bicubic) from HR cropped to a multiple of the scale. "
        "Bicubic is MATLAB-style bicubic upscaling of the same LR input. Our outputs are clipped and "
        "rounded to 8 bits before scoring, as the service returns them.",
        "Published figures are the papers' own Set5 numbers (Y channel, their evaluation code); "
        "there are none for the 5-image subsets.",
        *(f"[{i}] {c}" for i, c in enumerate(CITATIONS, start=1)),
        f"Reproduce: `{command}`",
    ]
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def _grouped(scores: Sequence[Score]) -> dict[tuple[str, int], list[Score]]:
    groups: dict[tuple[str, int], list[Score]] = {}
    for score in scores:
        groups.setdefault((score.dataset, score.scale), []).append(score)
    return groups
