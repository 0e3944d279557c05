"""The gRPC wire format of the inference protocol: `inference.*` messages to and from the core's types."""

from __future__ import annotations

from typing import Any

from service.errors import InvalidInput
from service.inference_protocol.datatypes import checked_shape, from_bytes, from_values, to_bytes
from service.inference_protocol.stubs import model_config_pb2 as mc
from service.inference_protocol.stubs import service_pb2 as pb
from service.inference_protocol.types import (
    IndexEntry,
    InferRequest,
    InferResponse,
    ModelConfiguration,
    ModelMetadata,
    ParameterValue,
    RequestedOutput,
    Tensor,
    TensorSpec,
)

# Where InferTensorContents keeps the values of each datatype (FP16 and BF16 travel raw only).
CONTENTS_FIELDS = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def infer_request(message: pb.ModelInferRequest) -> InferRequest:
    """An `InferRequest` from its message: data in `raw_input_contents` (one per input) or `contents`."""
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs: send one per input, in order"
        )
    tensors = [_tensor(item, raw[i] if raw else None) for i, item in enumerate(message.inputs)]
    return InferRequest(
        model_name=message.model_name,
        model_version=message.model_version,
        id=message.id,
        inputs=tensors,
        outputs=[RequestedOutput(o.name) for o in message.outputs],
        parameters=parameters(message.parameters),
    )


def _tensor(item: pb.ModelInferRequest.InferInputTensor, raw: bytes | None) -> Tensor:
    where = f"input '{item.name}'"
    shape = checked_shape(list(item.shape), where)
    if raw is not None:
        if item.HasField("contents"):
            raise InvalidInput(f"{where} has both contents and raw_input_contents: send one of them")
        return Tensor(item.name, item.datatype, from_bytes(raw, item.datatype, shape, where))
    if not item.HasField("contents"):
        raise InvalidInput(f"{where} has no data: set raw_input_contents (one per input) or its contents")
    field = CONTENTS_FIELDS.get(item.datatype)
    if field is None:
        raise InvalidInput(f"{where}: {item.datatype} data must be sent in raw_input_contents")
    values = list(getattr(item.contents, field))
    return Tensor(item.name, item.datatype, from_values(values, item.datatype, shape, where))


def parameters(entries: Any) -> dict[str, ParameterValue]:
    """`map<string, InferParameter>` as plain values (unset entries skipped)."""
    values: dict[str, ParameterValue] = {}
    for key, parameter in entries.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is not None:
            values[key] = getattr(parameter, choice)
    return values


def infer_response(response: InferResponse) -> pb.ModelInferResponse:
    """The response message, data in `raw_output_contents` (as Triton answers)."""
    return pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id,
        outputs=[
            pb.ModelInferResponse.InferOutputTensor(name=t.name, datatype=t.datatype, shape=list(t.shape))
            for t in response.outputs
        ],
        raw_output_contents=[to_bytes(t.data) for t in response.outputs],
    )


def model_metadata(meta: ModelMetadata) -> pb.ModelMetadataResponse:
    def tensors(specs: tuple[TensorSpec, ...]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
        return [pb.ModelMetadataResponse.TensorMetadata(name=s.name, datatype=s.datatype, shape=s.shape) for s in specs]

    return pb.ModelMetadataResponse(
        name=meta.name,
        versions=list(meta.versions),
        platform=meta.platform,
        inputs=tensors(meta.inputs),
        outputs=tensors(meta.outputs),
    )


def model_config(config: ModelConfiguration) -> pb.ModelConfigResponse:
    message = mc.ModelConfig(
        name=config.name,
        platform=config.platform,
        backend=config.backend,
        max_batch_size=config.max_batch_size,
        input=[
            mc.ModelInput(name=s.name, data_type=_data_type(s.datatype), format=mc.ModelInput.FORMAT_NHWC, dims=s.shape)
            for s in config.inputs
        ],
        output=[mc.ModelOutput(name=s.name, data_type=_data_type(s.datatype), dims=s.shape) for s in config.outputs],
        instance_group=[
            mc.ModelInstanceGroup(
                name=f"{config.name}_0",
                kind=mc.ModelInstanceGroup.Kind.Value(config.instance_kind),
                count=config.instance_count,
                gpus=config.gpus,
            )
        ],
        dynamic_batching=mc.ModelDynamicBatching(
            preferred_batch_size=[config.preferred_batch_size],
            max_queue_delay_microseconds=config.max_queue_delay_us,
        ),
        parameters={k: mc.ModelParameter(string_value=v) for k, v in config.parameters.items()},
    )
    return pb.ModelConfigResponse(config=message)


def _data_type(datatype: str) -> str:
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


def repository_index(entries: list[IndexEntry]) -> pb.RepositoryIndexResponse:
    return pb.RepositoryIndexResponse(
        models=[
            pb.RepositoryIndexResponse.ModelIndex(name=e.name, version=e.version, state=e.state, reason=e.reason)
            for e in entries
        ]
    )
