"""Task sections of `model.toml` beside `[superres]`: `[detect]`, `[style]` and `[interpolate]`.

Each section says what its pipeline needs to know about the model beyond its tensors: how a
detector's outputs decode into boxes, which style a style model paints, how an interpolation
model takes its time step. `check_task_tensors` checks that a model's inputs and outputs fit the
pipeline of its task (see docs/filters.md for the contracts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

DetectDecoder = Literal["yolo", "yolox", "ssd"]
ResizeMode = Literal["letterbox", "resize"]
PadAlign = Literal["center", "top-left"]
TimestepShape = Literal["scalar", "map"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SsdPriors(_Section):
    """Prior (anchor) boxes of an SSD-style head, one feature map per stride (RFB face detectors)."""

    min_sizes: list[list[float]] = Field(
        min_length=1, description="Prior sides in input pixels, one list per feature map (e.g. [[10,16,24],...])."
    )
    steps: list[int] = Field(min_length=1, description="Stride of each feature map in input pixels.")
    variance: tuple[float, float] = Field((0.1, 0.2), description="Centre and size variance of the encoding.")
    clip: bool = Field(True, description="Clamp the priors to [0, 1].")

    @model_validator(mode="after")
    def _one_size_list_per_step(self) -> SsdPriors:
        if len(self.min_sizes) != len(self.steps):
            raise ValueError(f"{len(self.min_sizes)} min_sizes lists for {len(self.steps)} steps: give one per step")
        if any(s < 1 for s in self.steps) or any(not sizes for sizes in self.min_sizes):
            raise ValueError("steps must be >= 1 and every min_sizes list non-empty")
        return self


class Detection(_Section):
    """Settings of the detect task: preprocessing, output decoding, labels, default thresholds."""

    decoder: DetectDecoder = Field(description="yolo: [1,4+C,N]; yolox: [1,N,5+C] grid outputs; ssd: scores+boxes.")
    input_size: tuple[int, int] = Field(description="Model input width and height in pixels.")
    resize: ResizeMode = Field("letterbox", description="Keep the aspect ratio and pad, or stretch.")
    align: PadAlign = Field("center", description="Where a letterboxed image sits (YOLOX: top-left).")
    pad_value: int = Field(114, ge=0, le=255, description="Grey level of the letterbox padding.")
    strides: list[int] = Field([8, 16, 32], min_length=1, description="yolox: strides of the output grids.")
    labels: list[str] = Field(default_factory=list, description="Class names by class id.")
    labels_file: str | None = Field(None, description="Class names, one per line, relative to the model folder.")
    score_threshold: float = Field(0.25, ge=0.0, le=1.0, description="Default lowest score kept.")
    iou_threshold: float = Field(0.45, ge=0.0, le=1.0, description="Default IoU above which NMS drops a box.")
    class_agnostic: bool = Field(False, description="NMS across classes instead of within each class.")
    max_detections: int = Field(300, ge=1, le=10_000, description="Most detections answered per image.")
    scores_output: str = Field("scores", description="ssd: name of the [1,N,C] scores output.")
    boxes_output: str = Field("boxes", description="ssd: name of the [1,N,4] boxes output.")
    background_class: bool = Field(True, description="ssd: score column 0 is the background class.")
    boxes_decoded: bool = Field(
        True, description="ssd: boxes are normalised x1,y1,x2,y2 already; false: raw offsets decoded with priors."
    )
    priors: SsdPriors | None = Field(None, description="ssd with boxes_decoded = false: the prior boxes.")

    @model_validator(mode="after")
    def _consistent(self) -> Detection:
        if min(self.input_size) < 8:
            raise ValueError(f"input_size {list(self.input_size)} is too small: width and height must be >= 8")
        if self.labels and self.labels_file:
            raise ValueError("give labels or labels_file, not both")
        if self.decoder == "ssd" and not self.boxes_decoded and self.priors is None:
            raise ValueError("decoder 'ssd' with boxes_decoded = false needs a [detect.priors] section")
        if any(s < 1 for s in self.strides):
            raise ValueError("strides must be >= 1")
        return self


class Style(_Section):
    """Settings of the style task."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="Style name used in POST /v1/style?style=.")


class Interpolation(_Section):
    """Settings of the interpolate task: how the model takes the time step between its two frames."""

    timestep_input: str | None = Field(
        None, description="Name of the kind='tensor' input that takes t in (0, 1); none: the model makes t = 0.5."
    )
    timestep_shape: TimestepShape = Field("scalar", description="scalar: [N,1,1,1]; map: [N,1,H,W].")


class _TensorSpec(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...


def _images(specs: Sequence[_TensorSpec]) -> list[str]:
    return [s.name for s in specs if s.kind == "image"]


def check_task_tensors(
    task: str,
    inputs: Sequence[_TensorSpec],
    outputs: Sequence[_TensorSpec],
    detect: Detection | None,
    interpolate: Interpolation | None,
) -> None:
    """Raise ValueError when the model's tensors do not fit its task's pipeline."""
    if task == "style":
        if len(inputs) != 1 or inputs[0].kind != "image" or outputs[0].kind != "image":
            raise ValueError("a style model takes one image input and gives an image as its first output")
    elif task == "detect" and detect is not None:
        _check_detect(inputs, outputs, detect)
    elif task == "interpolate" and interpolate is not None:
        _check_interpolate(inputs, outputs, interpolate)


def _check_detect(inputs: Sequence[_TensorSpec], outputs: Sequence[_TensorSpec], detect: Detection) -> None:
    if len(inputs) != 1 or inputs[0].kind != "image":
        raise ValueError("a detect model takes one image input")
    if any(o.kind != "tensor" for o in outputs):
        raise ValueError("a detect model's outputs are plain tensors: set kind = 'tensor' on every output")
    names = [o.name for o in outputs]
    if detect.decoder == "ssd":
        missing = {detect.scores_output, detect.boxes_output} - set(names)
        if missing:
            raise ValueError(f"decoder 'ssd' reads outputs {sorted(missing)}, which are not among outputs {names}")
    elif len(outputs) != 1:
        raise ValueError(f"decoder '{detect.decoder}' reads exactly one output, the config lists {names}")


def _check_interpolate(
    inputs: Sequence[_TensorSpec], outputs: Sequence[_TensorSpec], interpolate: Interpolation
) -> None:
    if len(_images(inputs)) != 2:
        raise ValueError("an interpolate model takes two image inputs (frame 0, frame 1), in that order")
    tensors = [s.name for s in inputs if s.kind == "tensor"]
    wanted = [interpolate.timestep_input] if interpolate.timestep_input else []
    if tensors != wanted:
        raise ValueError(f"the interpolate model's tensor inputs {tensors} must be exactly its timestep_input {wanted}")
    if not _images(outputs):
        raise ValueError("an interpolate model gives the frame between as an image output")
