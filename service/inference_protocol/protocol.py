"""The protocol core shared by `/v2` over HTTP and `inference.GRPCInferenceService` over gRPC.

It answers health, metadata, configuration and the repository index from the serving core, and
checks an inference request against the model's adapter before it runs. The front ends only
translate their wire formats; admission, deadlines and the batcher are the serving core's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from service.core import ServedModel, ServingCore
from service.errors import InvalidInput, ModelNotFound, Unimplemented
from service.inference_protocol.adapters import ADAPTERS, TaskAdapter
from service.inference_protocol.types import (
    IndexEntry,
    InferRequest,
    InferResponse,
    ModelConfiguration,
    ModelMetadata,
    ServerMetadata,
    Tensor,
    TensorSpec,
)
from service.scheduling.records import RequestTicket
from service.security.redact import redact_paths

SERVER_NAME = "filters-service"
MODEL_VERSION = "1"  # the repository holds one version of each model
EXTENSIONS = ("binary_tensor_data", "model_configuration", "parameters")


@dataclass(frozen=True)
class ExposedModel:
    """A loaded model and the adapter that shows it in the protocol."""

    served: ServedModel
    adapter: TaskAdapter


@dataclass
class PreparedInfer:
    """A request checked against its model: inputs by name (batch axis of 1 removed), outputs to send."""

    model: ExposedModel
    request: InferRequest
    inputs: dict[str, np.ndarray]
    batched: bool
    outputs: tuple[TensorSpec, ...]


class InferenceProtocol:
    """The protocol's answers, over one `ServingCore`."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core

    def server_metadata(self) -> ServerMetadata:
        try:
            server_version = version("filters-service")
        except PackageNotFoundError:
            server_version = "0"
        return ServerMetadata(SERVER_NAME, server_version, EXTENSIONS)

    def ready(self) -> bool:
        return self.core.ready

    def model(self, name: str, version: str = "") -> ExposedModel:
        """The model a request names (and its version: "" or "1"), ready to serve."""
        if version not in ("", MODEL_VERSION):
            raise ModelNotFound(f"model '{name}' has only version {MODEL_VERSION}, not '{version}'")
        served = self.core.model(name)
        adapter = ADAPTERS.get(served.config.task)
        if adapter is None:
            raise Unimplemented(
                f"model '{name}' is a {served.config.task} model, which the inference protocol does not expose "
                f"yet (it exposes {sorted(ADAPTERS)} models); use the filters API for it"
            )
        return ExposedModel(served, adapter)

    def model_ready(self, name: str, version: str = "") -> bool:
        """Whether `name` serves now; unknown names are an error, not 'not ready'."""
        if name not in {loaded.config.name for loaded in self.core.configs}:
            raise ModelNotFound(f"no model named '{name}'; the repository has {self._names()}")
        if version not in ("", MODEL_VERSION):
            return False
        served = self.core.models.get(name)
        return (
            self.core.ready and served is not None and served.scheduler.pool.healthy and served.config.task in ADAPTERS
        )

    def model_metadata(self, name: str, version: str = "") -> ModelMetadata:
        model = self.model(name, version)
        served, adapter = model.served, model.adapter
        return ModelMetadata(
            served.name, (MODEL_VERSION,), adapter.platform, adapter.inputs(served), adapter.outputs(served)
        )

    def model_configuration(self, name: str, version: str = "") -> ModelConfiguration:
        model = self.model(name, version)
        served, adapter = model.served, model.adapter
        devices = served.runtime.devices()
        gpus = tuple(int(d.split(":")[1]) for d in devices if d.startswith("cuda:"))
        batching = served.config.batching
        return ModelConfiguration(
            name=served.name,
            platform=adapter.platform,
            backend=served.runtime.name,
            max_batch_size=0,  # one image per request; tiles of all requests are batched inside
            inputs=adapter.inputs(served),
            outputs=adapter.outputs(served),
            instance_kind="KIND_GPU" if gpus else "KIND_CPU",
            instance_count=served.config.instances.count,
            gpus=gpus,
            max_queue_delay_us=int(batching.max_queue_delay_ms * 1000),
            preferred_batch_size=batching.max_batch_size,
            parameters=adapter.parameters(served),
        )

    def repository_index(self, ready_only: bool = False) -> list[IndexEntry]:
        entries = [self._index_entry(loaded.config.name, loaded.config.task) for loaded in self.core.configs]
        return [e for e in entries if e.state == "READY"] if ready_only else entries

    def _index_entry(self, name: str, task: str) -> IndexEntry:
        served = self.core.models.get(name)
        if task not in ADAPTERS:
            return IndexEntry(name, MODEL_VERSION, "UNAVAILABLE", f"{task} models are not exposed by this protocol")
        if served is None:
            reason = redact_paths(self.core.state.load_error or "loading")
            return IndexEntry(name, MODEL_VERSION, "UNAVAILABLE" if self.core.state.load_error else "LOADING", reason)
        if not (self.core.ready and served.scheduler.pool.healthy):
            return IndexEntry(name, MODEL_VERSION, "UNAVAILABLE", "the server is not ready (draining or restarting)")
        return IndexEntry(name, MODEL_VERSION, "READY", "")

    def _names(self) -> list[str]:
        return sorted(loaded.config.name for loaded in self.core.configs)

    def prepare(self, model: ExposedModel, request: InferRequest) -> PreparedInfer:
        """Check `request` against the model's tensors; a clear InvalidInput for any mismatch."""
        specs = {spec.name: spec for spec in model.adapter.inputs(model.served)}
        given: dict[str, Tensor] = {}
        for tensor in request.inputs:
            if tensor.name in given:
                raise InvalidInput(f"input '{tensor.name}' is sent twice")
            given[tensor.name] = tensor
        if missing := sorted(set(specs) - set(given)):
            raise InvalidInput(f"model '{model.served.name}' needs input(s) {missing}; the request has {sorted(given)}")
        if unknown := sorted(set(given) - set(specs)):
            raise InvalidInput(f"model '{model.served.name}' has no input(s) {unknown}; its inputs are {sorted(specs)}")
        fitted = {name: _fit(specs[name], given[name]) for name in specs}
        batched = {flag for _, flag in fitted.values()}
        if len(batched) > 1:
            raise InvalidInput("send every input with a batch dimension of 1, or none of them")
        inputs = {name: array for name, (array, _) in fitted.items()}
        return PreparedInfer(model, request, inputs, batched.pop(), self._outputs(model, request))

    @staticmethod
    def _outputs(model: ExposedModel, request: InferRequest) -> tuple[TensorSpec, ...]:
        specs = model.adapter.outputs(model.served)
        if not request.outputs:
            return specs
        by_name = {spec.name: spec for spec in specs}
        if unknown := sorted({o.name for o in request.outputs} - set(by_name)):
            raise InvalidInput(
                f"model '{model.served.name}' has no output(s) {unknown}; its outputs are {sorted(by_name)}"
            )
        return tuple(by_name[o.name] for o in request.outputs)

    async def run(self, prepared: PreparedInfer, ticket: RequestTicket) -> InferResponse:
        """Run a prepared request inside the caller's `core.request_scope` (its `ticket`)."""
        model, request = prepared.model, prepared.request
        arrays = await model.adapter.infer(self.core, model.served, prepared.inputs, request.parameters, ticket)
        outputs = [
            Tensor(spec.name, spec.datatype, arrays[spec.name][np.newaxis] if prepared.batched else arrays[spec.name])
            for spec in prepared.outputs
        ]
        return InferResponse(model.served.name, MODEL_VERSION, request.id, outputs)

    @staticmethod
    def timeout_s(request: InferRequest, transport_timeout_s: float | None) -> float | None:
        """The request's deadline: the `timeout` parameter (microseconds, as Triton) and the transport's."""
        timeout = request.parameters.get("timeout")
        if timeout is None:
            return transport_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            raise InvalidInput(f"parameter 'timeout' is in microseconds, a positive integer; got {timeout!r}")
        seconds = timeout / 1e6
        return seconds if transport_timeout_s is None else min(seconds, transport_timeout_s)


def _fit(spec: TensorSpec, tensor: Tensor) -> tuple[np.ndarray, bool]:
    """`tensor`'s data checked against `spec` (a leading batch dimension of 1 allowed and removed)."""
    where = f"input '{spec.name}'"
    if tensor.datatype != spec.datatype:
        raise InvalidInput(f"{where} must be {spec.datatype}, got {tensor.datatype}")
    shape, data = tensor.shape, tensor.data
    batched = len(shape) == len(spec.shape) + 1
    if batched and shape[0] != 1:
        raise InvalidInput(
            f"{where} has a batch of {shape[0]} (shape {list(shape)}): send one per request; "
            "the server batches concurrent requests itself"
        )
    dims = shape[1:] if batched else shape
    wanted = "[" + ", ".join("any" if d == -1 else str(d) for d in spec.shape) + "]"
    if len(dims) != len(spec.shape) or any(w not in (-1, d) for w, d in zip(spec.shape, dims, strict=True)):
        raise InvalidInput(f"{where} must have shape {wanted} (or [1, ...] with a batch of one); got {list(shape)}")
    if math.prod(dims) == 0:
        raise InvalidInput(f"{where} is empty: shape {list(shape)}")
    return (data[0] if batched else data), batched
