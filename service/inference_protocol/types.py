"""What the protocol core and its two front ends (HTTP JSON/binary, gRPC) exchange."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ParameterValue = bool | int | float | str


@dataclass(frozen=True)
class TensorSpec:
    """A tensor a model exposes: its name, v2 datatype and shape (-1: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass
class Tensor:
    """A named tensor with its data (the array's shape is the tensor's shape)."""

    name: str
    datatype: str
    data: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.data.shape)


@dataclass(frozen=True)
class RequestedOutput:
    """An output the client asked for; `binary` is the HTTP binary-data flag (None: unset)."""

    name: str
    binary: bool | None = None


@dataclass
class InferRequest:
    """One inference request, whatever the transport."""

    model_name: str
    model_version: str = ""
    id: str = ""
    inputs: list[Tensor] = field(default_factory=list)
    outputs: list[RequestedOutput] = field(default_factory=list)
    parameters: dict[str, ParameterValue] = field(default_factory=dict)


@dataclass
class InferResponse:
    """The answer to an `InferRequest`."""

    model_name: str
    model_version: str
    id: str
    outputs: list[Tensor]


@dataclass(frozen=True)
class ServerMetadata:
    name: str
    version: str
    extensions: tuple[str, ...]


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class ModelConfiguration:
    """The model-configuration extension's view of a model (Triton's `ModelConfig`, in part)."""

    name: str
    platform: str
    backend: str
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    instance_kind: str  # KIND_CPU or KIND_GPU
    instance_count: int
    gpus: tuple[int, ...]
    max_queue_delay_us: int
    preferred_batch_size: int
    parameters: dict[str, str]


@dataclass(frozen=True)
class IndexEntry:
    """One model of the repository index."""

    name: str
    version: str
    state: str  # READY, LOADING or UNAVAILABLE
    reason: str
