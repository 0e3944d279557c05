"""The HTTP wire format of `/v2/.../infer`: JSON tensors and the binary tensor data extension.

A request body is JSON, or (binary extension) JSON of `Inference-Header-Content-Length` bytes
followed by the raw data of every input whose `parameters.binary_data_size` is set, in input
order. An output is answered in binary when its `parameters.binary_data` is true, or, if it does
not say, when the request's `parameters.binary_data_output` is true; otherwise as a JSON list.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from service.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from service.inference_protocol.datatypes import checked_shape, from_bytes, from_values, to_bytes, to_values
from service.inference_protocol.types import InferRequest, InferResponse, ParameterValue, RequestedOutput, Tensor

HEADER_LENGTH = "Inference-Header-Content-Length"


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body after its `Content-Encoding` (gzip or deflate, as tritonclient sends), within `limit`."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise UnsupportedMediaType(f"Content-Encoding '{encoding}' is not supported; send gzip, deflate or none")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"the {encoding} body could not be decompressed: {exc}") from None
    if len(data) > limit:
        raise PayloadTooLarge(f"the decompressed body is over the limit of {limit} bytes")
    return data


def parse_infer_request(body: bytes, header_length: str | None, model_name: str, model_version: str) -> InferRequest:
    """An `InferRequest` from a `/v2/.../infer` body (JSON, or JSON + binary tensor data)."""
    split = _header_length(header_length, len(body))
    document = _json_object(body[:split])
    binary = memoryview(body)[split:]
    items = document.get("inputs")
    if not isinstance(items, list) or not items:
        raise InvalidInput("the request has no 'inputs': send a list with one object per input tensor")
    inputs, used = [], 0
    for index, item in enumerate(items):
        tensor, size = _input(item, index, binary[used:])
        inputs.append(tensor)
        used += size
    if used != len(binary):
        raise InvalidInput(f"{len(binary) - used} bytes of binary data follow the JSON that no input claims")
    request_id = document.get("id", "")
    if not isinstance(request_id, str):
        raise InvalidInput(f"'id' must be a string, got {request_id!r}")
    return InferRequest(
        model_name,
        model_version,
        request_id,
        inputs,
        _outputs(document.get("outputs")),
        _parameters(document, "the request"),
    )


def _header_length(value: str | None, body_size: int) -> int:
    if value is None:
        return body_size
    if not value.isdigit() or int(value) > body_size:
        raise InvalidInput(f"{HEADER_LENGTH} must be the JSON part's size (0-{body_size} bytes), got '{value}'")
    return int(value)


def _json_object(data: bytes | memoryview) -> dict[str, Any]:
    try:
        document = json.loads(bytes(data))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"the request is not valid JSON ({exc}); with binary data, set {HEADER_LENGTH}") from None
    if not isinstance(document, dict):
        raise InvalidInput("the request must be a JSON object with 'inputs'")
    return document


def _input(item: Any, index: int, binary: memoryview) -> tuple[Tensor, int]:
    """One input tensor and how many bytes of the binary section it took."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("datatype"), str):
        raise InvalidInput(f"inputs[{index}] must be an object with 'name', 'datatype', 'shape' and data")
    name, datatype = item["name"], item["datatype"]
    where = f"input '{name}'"
    shape = checked_shape(item.get("shape"), where)
    size = _parameters(item, where).get("binary_data_size")
    if size is None:
        if "data" not in item:
            raise InvalidInput(f"{where} has no data: set 'data', or parameters.binary_data_size with binary data")
        return Tensor(name, datatype, from_values(item["data"], datatype, shape, where)), 0
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInput(f"{where}: binary_data_size must be a byte count, got {size!r}")
    if "data" in item:
        raise InvalidInput(f"{where} has both 'data' and binary_data_size: send one of them")
    if size > len(binary):
        raise InvalidInput(f"{where}: binary_data_size {size} runs past the end of the body ({len(binary)} bytes left)")
    return Tensor(name, datatype, from_bytes(bytes(binary[:size]), datatype, shape, where)), size


def _outputs(items: Any) -> list[RequestedOutput]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in items):
        raise InvalidInput("'outputs' must be a list of objects with a 'name'")
    requested = []
    for item in items:
        binary = _parameters(item, f"output '{item['name']}'").get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise InvalidInput(f"output '{item['name']}': binary_data must be true or false")
        requested.append(RequestedOutput(item["name"], binary))
    return requested


def _parameters(holder: dict[str, Any], where: str) -> dict[str, ParameterValue]:
    parameters = holder.get("parameters", {})
    if not isinstance(parameters, dict) or not all(
        isinstance(v, bool | int | float | str) for v in parameters.values()
    ):
        raise InvalidInput(f"{where}: 'parameters' must be an object of strings, numbers and booleans")
    return parameters


def render_infer_response(response: InferResponse, request: InferRequest) -> tuple[bytes, dict[str, str]]:
    """The response body and headers: JSON, or JSON + binary data for the outputs asked in binary."""
    default_binary = request.parameters.get("binary_data_output") is True
    flags = {o.name: o.binary for o in request.outputs}
    outputs, blobs = [], []
    for tensor in response.outputs:
        entry: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
        binary = flags.get(tensor.name)
        if binary if binary is not None else default_binary:
            blob = to_bytes(tensor.data)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = to_values(tensor.data)
        outputs.append(entry)
    document: dict[str, Any] = {"model_name": response.model_name, "model_version": response.model_version}
    if response.id:
        document["id"] = response.id
    document["outputs"] = outputs
    header = json.dumps(document, separators=(",", ":")).encode()
    if not blobs:
        return header, {"content-type": "application/json"}
    return header + b"".join(blobs), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
