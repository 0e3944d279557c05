"""The HTTP wire format of the inference protocol, without a server: JSON and binary tensors, and
the clear errors every malformed body gets."""

from __future__ import annotations

import gzip
import json
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.errors import InvalidInput, PayloadTooLarge, ServiceError, UnsupportedMediaType
from service.inference_protocol.datatypes import NUMPY_TYPES, from_bytes, from_values, to_bytes, to_values
from service.inference_protocol.http_codec import decompress, parse_infer_request, render_infer_response
from service.inference_protocol.types import InferRequest, InferResponse, RequestedOutput, Tensor

DATATYPES = sorted(NUMPY_TYPES)


def _binary_body(document: dict[str, object], *blobs: bytes) -> tuple[bytes, str]:
    header = json.dumps(document).encode()
    return header + b"".join(blobs), str(len(header))


@given(data=st.data(), datatype=st.sampled_from(DATATYPES))
def test_tensors_survive_bytes_and_values(data: st.DataObject, datatype: str) -> None:
    dtype = NUMPY_TYPES[datatype]
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5))
    elements = hnp.from_dtype(dtype, allow_nan=False, allow_infinity=False) if dtype.kind == "f" else None
    array = data.draw(hnp.arrays(dtype, shape, elements=elements))
    assert np.array_equal(from_bytes(to_bytes(array), datatype, shape, "t"), array)
    assert np.array_equal(from_values(to_values(array), datatype, shape, "t"), array)


def test_json_and_binary_inputs_parse_the_same() -> None:
    rgb = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    as_json = json.dumps(
        {"id": "x", "inputs": [{"name": "IMAGE", "datatype": "UINT8", "shape": [2, 4, 3], "data": rgb.tolist()}]}
    )
    body, length = _binary_body(
        {"inputs": [{"name": "IMAGE", "datatype": "UINT8", "shape": [2, 4, 3], "parameters": {"binary_data_size": 24}}],
         "outputs": [{"name": "IMAGE", "parameters": {"binary_data": True}}], "parameters": {"timeout": 5}},
        rgb.tobytes(),
    )  # fmt: skip
    from_json = parse_infer_request(as_json.encode(), None, "m", "")
    from_binary = parse_infer_request(body, length, "m", "1")
    assert from_json.id == "x" and np.array_equal(from_json.inputs[0].data, rgb)
    assert np.array_equal(from_binary.inputs[0].data, rgb)
    assert from_binary.outputs == [RequestedOutput("IMAGE", True)] and from_binary.parameters == {"timeout": 5}


def _tensor(shape: list[int], **fields: object) -> str:
    return json.dumps({"inputs": [{"name": "A", "datatype": "UINT8", "shape": shape, **fields}]})


@pytest.mark.parametrize(
    ("text", "binary", "says"),
    [
        ("{not json", None, "not valid JSON"),
        ("[1, 2]", None, "must be a JSON object"),
        ('{"inputs": []}', None, "has no 'inputs'"),
        ('{"inputs": [{"name": "IMAGE"}]}', None, "must be an object with 'name', 'datatype'"),
        (_tensor([2]), None, "has no data"),
        (_tensor([-2], data=[]), None, "non-negative integers"),
        (_tensor([3], data=[1, 2]), None, "has 3 elements"),
        (_tensor([2], data=[1, 300]), None, "0..255"),
        (_tensor([2], data=[1.5, 2]), None, "must be integers"),
        (_tensor([2], data=[[1], [2, 3]]), None, "regular list"),
        (_tensor([1], datatype="BYTES", data=["x"]), None, "not supported here"),
        (_tensor([4], parameters={"binary_data_size": 4}), b"xy", "runs past the end"),
        (_tensor([2], parameters={"binary_data_size": 2}), b"xyz", "no input claims"),
        (_tensor([4], parameters={"binary_data_size": 2}), b"xy", "is 4 bytes, but 2"),
        (_tensor([4], data=[1, 2, 3, 4], parameters={"binary_data_size": 4}), b"abcd", "both 'data' and"),
        ('{"id": 7, "inputs": [{"name": "A", "datatype": "UINT8", "shape": [1], "data": [1]}]}', None, "'id' must be"),
        (
            '{"inputs": [{"name": "A", "datatype": "UINT8", "shape": [1], "data": [1]}], "outputs": [1]}',
            None,
            "'outputs'",
        ),
    ],
)
def test_malformed_bodies_are_invalid_input_that_says_why(text: str, binary: bytes | None, says: str) -> None:
    body = text.encode() + (binary or b"")
    with pytest.raises(InvalidInput) as failure:
        parse_infer_request(body, None if binary is None else str(len(text.encode())), "m", "")
    assert says in failure.value.message


def test_a_header_length_past_the_body_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Inference-Header-Content-Length"):
        parse_infer_request(_tensor([1], data=[1]).encode(), "9999", "m", "")


def test_outputs_are_binary_when_asked_and_json_otherwise() -> None:
    image = Tensor("IMAGE", "UINT8", np.arange(12, dtype=np.uint8).reshape(2, 2, 3))
    response = InferResponse("m", "1", "req", [image])
    body, headers = render_infer_response(response, InferRequest("m", parameters={"binary_data_output": True}))
    length = int(headers["Inference-Header-Content-Length"])
    header = json.loads(body[:length])
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 12 and body[length:] == image.data.tobytes()
    body, headers = render_infer_response(response, InferRequest("m", outputs=[RequestedOutput("IMAGE", False)]))
    assert "Inference-Header-Content-Length" not in headers
    assert json.loads(body)["outputs"][0]["data"] == list(range(12)) and json.loads(body)["id"] == "req"


def test_compressed_bodies_are_inflated_within_the_limit() -> None:
    data = b'{"inputs": []}' * 10
    assert decompress(gzip.compress(data), "gzip", 1000) == data
    assert decompress(zlib.compress(data), "deflate", 1000) == data
    bomb = gzip.compress(bytes(10_000_000))
    failures: list[ServiceError] = []
    for body, encoding, error in [
        (bomb, "gzip", PayloadTooLarge),
        (b"junk", "gzip", InvalidInput),
        (data, "br", UnsupportedMediaType),
    ]:
        with pytest.raises(error) as failure:
            decompress(body, encoding, 1000)
        failures.append(failure.value)
    assert "over the limit of 1000 bytes" in failures[0].message and "'br' is not supported" in failures[2].message
