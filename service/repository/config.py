"""Per-model configuration: the `model.toml` beside each model in the model repository.

Everything that makes a model servable lives here (tensor names and formats, tiling, batching,
instances), validated once at start-up so that a bad file fails loudly and names its field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.repository.gpu import GpuOptions
from service.repository.tasks import Detection, Interpolation, Style, check_task_tensors

Task = Literal["superres", "style", "detect", "interpolate"]
RuntimeName = Literal["tensorrt", "torch", "onnxruntime", "classical"]
FileKind = Literal["onnx", "tensorrt", "torch"]
Layout = Literal["NCHW", "NHWC"]
DType = Literal["float32", "float16", "uint8"]
ChannelOrder = Literal["RGB", "BGR"]
Precision = Literal["fp32", "fp16"]
TensorKind = Literal["image", "tensor"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageTensor(_Strict):
    """A model input or output. `kind = "image"` (the default): the service converts uint8 RGB pixels
    to and from it as described by the other fields. `kind = "tensor"`: a plain array (detection
    outputs, an interpolation time step) passed through unconverted, cast to `dtype` on input."""

    name: str = Field(min_length=1, description="Tensor name in the model file.")
    layout: Layout = Field("NCHW", description="Memory layout of the batch.")
    dtype: DType = Field("float32", description="Element type the model expects.")
    value_range: tuple[float, float] = Field(
        (0.0, 1.0), description="Values that pixel 0 and pixel 255 map to (linear in between)."
    )
    channel_order: ChannelOrder = Field("RGB", description="Order of the colour channels.")
    kind: TensorKind = Field("image", description="image: pixels converted as above; tensor: passed through.")


class ModelFiles(_Strict):
    """Model file per runtime, relative to the model's folder."""

    onnx: str | None = Field(None, description="ONNX file: the source for every runtime.")
    tensorrt: str | None = Field(None, description="Prebuilt TensorRT plan (else built from ONNX).")
    torch: str | None = Field(None, description="TorchScript/ExportedProgram file for the torch runtime.")
    builtin: str | None = Field(None, description="A built-in algorithm instead of a file ('dis-flow': classical).")

    @model_validator(mode="after")
    def _at_least_one(self) -> ModelFiles:
        if not (self.onnx or self.tensorrt or self.torch or self.builtin):
            raise ValueError("name at least one model file (onnx, tensorrt or torch) or a builtin algorithm")
        return self


class SuperResolution(_Strict):
    """Settings of the superres task."""

    scale: int = Field(ge=1, le=16, description="Output size over input size, per side.")
    default: bool = Field(False, description="Serve requests that name only this scale (or nothing) with this model.")


class Tiling(_Strict):
    """How large images are cut into tiles of the model's input size."""

    tile_size: int = Field(256, ge=8, le=4096, description="Tile side in input pixels.")
    overlap: int = Field(
        16, ge=0, le=512, description="Context pixels on each side of a tile; >= the receptive-field margin."
    )
    size_multiple: int = Field(1, ge=1, le=64, description="Tile sides are padded up to a multiple of this.")
    fixed_shape: bool = Field(
        False, description="The runtime accepts only tile_size x tile_size: small images are padded."
    )

    @model_validator(mode="after")
    def _overlap_fits(self) -> Tiling:
        if 2 * self.overlap >= self.tile_size:
            raise ValueError(
                f"overlap {self.overlap} leaves nothing of tile_size {self.tile_size}: need 2*overlap < tile_size"
            )
        return self


class Batching(_Strict):
    """Dynamic batching policy of the model."""

    max_batch_size: int = Field(8, ge=1, le=1024, description="Most tiles run in one call.")
    max_queue_delay_ms: float = Field(
        2.0, ge=0.0, le=10_000, description="Longest a tile waits for others to fill a batch."
    )
    max_queued_requests: int = Field(
        64, ge=1, le=100_000, description="Requests admitted but unanswered; beyond it: 429."
    )


class Instances(_Strict):
    """Execution slots (one context/session + stream + buffers each) per device."""

    count: int = Field(1, ge=1, le=64, description="Execution slots per device.")
    precision: Precision = Field("fp16", description="Precision on GPU runtimes (CPU runs fp32).")


class ModelConfig(_Strict):
    """One model of the repository, as written in `<repository>/<name>/model.toml`."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="Model name used in the API.")
    task: Task = Field(description="Which pipeline serves the model.")
    description: str = Field("", description="One line shown in GET /v1/models.")
    files: ModelFiles
    inputs: list[ImageTensor] = Field(min_length=1, description="Model inputs, in order.")
    outputs: list[ImageTensor] = Field(min_length=1, description="Model outputs, in order.")
    superres: SuperResolution | None = None
    detect: Detection | None = None
    style: Style | None = None
    interpolate: Interpolation | None = None
    tiling: Tiling = Tiling()
    batching: Batching = Batching()
    instances: Instances = Instances()
    gpu: GpuOptions = GpuOptions()
    runtimes: list[RuntimeName] | None = Field(
        None, description="Runtimes this model may use, best first; default: the server's preference."
    )

    @model_validator(mode="after")
    def _task_section(self) -> ModelConfig:
        if self.task == "superres" and self.superres is None:
            raise ValueError("task 'superres' needs a [superres] section with 'scale'")
        sections = {"detect": self.detect, "style": self.style, "interpolate": self.interpolate}
        if self.task in sections and sections[self.task] is None:
            raise ValueError(f"task '{self.task}' needs a [{self.task}] section (see docs/filters.md)")
        check_task_tensors(self.task, self.inputs, self.outputs, self.detect, self.interpolate)
        if self.gpu.batch_sizes and max(self.gpu.batch_sizes) < self.batching.max_batch_size:
            raise ValueError(
                f"gpu.batch_sizes {self.gpu.batch_sizes} must include a size >= batching.max_batch_size "
                f"({self.batching.max_batch_size})"
            )
        return self

    @property
    def scale(self) -> int:
        """Output/input size ratio (1 for tasks that keep the size)."""
        return self.superres.scale if self.superres else 1


class LoadedConfig(_Strict):
    """A validated config together with the folder it came from."""

    config: ModelConfig
    folder: Path

    def file(self, kind: FileKind) -> Path | None:
        """Absolute path of the model file of `kind`, if the config names one."""
        relative: str | None = getattr(self.config.files, kind)
        return (self.folder / relative) if relative else None
