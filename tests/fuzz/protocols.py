"""Hostile requests of the other front doors: the Open Inference Protocol (JSON and its binary
extension), gRPC messages (ours and the inference protocol's, as raw bytes so broken encodings are
sent as they are), and video containers. Generators take a `random.Random` (see generators.py)."""

from __future__ import annotations

import json
import math
import random
from typing import Any

from service.grpc.generated.filters.v1 import filters_pb2
from service.inference_protocol.stubs import service_pb2 as grpc_service_pb2
from tests.fuzz.generators import MUTATORS, mutated_image

DATATYPES = ["UINT8", "UINT8", "UINT8", "FP32", "INT64", "BYTES", "BOOL", "FP16", "INT999", "", "uint8"]
HEADER = "Inference-Header-Content-Length"


def _shape(rng: random.Random) -> Any:
    side = lambda: rng.choice([1, 2, 8, 16, 0, -1, -5, 2**31, 2**63 - 1, 10**20])  # noqa: E731
    return rng.choice(
        [
            [side(), side(), 3],
            [rng.randint(1, 16), rng.randint(1, 16), 3],
            [1, rng.randint(1, 16), rng.randint(1, 16), 3],
            [side()],
            [],
            "8,8,3",
            [1.5, 2, 3],
            None,
        ]
    )


def _values(rng: random.Random, count: int) -> Any:
    count = min(count, 4096)
    return rng.choice(
        [
            [rng.randint(0, 255) for _ in range(count)],
            [rng.randint(-(2**70), 2**70) for _ in range(min(count, 8))],
            [[rng.random()] for _ in range(min(count, 8))],
            "abc",
            None,
            {"a": 1},
            [True, "x", None],
        ]
    )


def _count(shape: Any) -> int:
    if isinstance(shape, list) and shape and all(isinstance(d, int) and 0 < d < 64 for d in shape):
        return int(math.prod(shape))
    return 12


def _valid_tensor(rng: random.Random) -> dict[str, Any]:
    height, width = rng.randint(1, 12), rng.randint(1, 12)
    data = [rng.randint(0, 255) for _ in range(height * width * 3)]
    return {"name": "IMAGE", "datatype": "UINT8", "shape": [height, width, 3], "data": data}


def _tensor(rng: random.Random) -> dict[str, Any]:
    """A valid IMAGE tensor with 0-3 things wrong (a wrong name, type, shape, data; a missing field)."""
    tensor = _valid_tensor(rng)
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        wrong = rng.choice(["name", "datatype", "shape", "data", "missing", "parameters"])
        if wrong == "name":
            tensor["name"] = rng.choice(["input", "", "x" * 200, 5])
        elif wrong == "datatype":
            tensor["datatype"] = rng.choice(DATATYPES)
        elif wrong == "shape":
            tensor["shape"] = _shape(rng)
        elif wrong == "data":
            tensor["data"] = _values(rng, _count(tensor.get("shape")))
        elif wrong == "missing":
            tensor.pop(rng.choice(["name", "datatype", "shape", "data"]), None)
        else:
            tensor["parameters"] = rng.choice([{"binary_data_size": -1}, {"x": [1]}, "p", {"binary_data_size": 10**12}])
    return tensor


def oip_json(rng: random.Random) -> tuple[dict[str, str], bytes]:
    """An inference-protocol JSON request: valid, or wrong in one or more ways."""
    document: dict[str, Any] = {"inputs": [_tensor(rng) for _ in range(rng.choice([1, 1, 1, 2, 0]))]}
    if rng.random() < 0.2:
        document["outputs"] = rng.choice(
            [[{"name": "IMAGE"}], [{"name": 5}], "x", [{"name": "IMAGE", "parameters": {"binary_data": "yes"}}]]
        )
    if rng.random() < 0.15:
        document["id"] = rng.choice(["abc", 5, None, "x" * 1000])
    if rng.random() < 0.15:
        document["parameters"] = rng.choice([{"binary_data_output": True}, [], {"k": {"nested": 1}}])
    body = json.dumps(document).encode()
    if rng.random() < 0.15:
        body = rng.choice([MUTATORS["truncate"], MUTATORS["flip_bytes"], MUTATORS["splice"]])(body, rng)
    return {"content-type": "application/json"}, body


def oip_binary(rng: random.Random) -> tuple[dict[str, str], bytes]:
    """The binary extension: a JSON header with binary_data_size, then raw tensor bytes; valid, or
    with the sizes, shape, type or header length wrong."""
    height, width = rng.randint(1, 12), rng.randint(1, 12)
    data = rng.randbytes(height * width * 3)
    declared: Any = len(data)
    shape: Any = [height, width, 3]
    datatype = "UINT8"
    tail = b""
    for _ in range(rng.choice([0, 1, 1, 2])):
        wrong = rng.choice(["declared", "shape", "datatype", "tail"])
        if wrong == "declared":
            declared = rng.choice([len(data) - 1, len(data) + 1, 0, -1, 10**12, "12"])
        elif wrong == "shape":
            shape = rng.choice([[width, height, 3], [height, width], [1, height, width, 3], _shape(rng)])
        elif wrong == "datatype":
            datatype = rng.choice(DATATYPES)
        else:
            tail = b"\x00" * rng.randint(1, 64)
    tensor = {"name": "IMAGE", "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": declared}}
    header = json.dumps({"inputs": [tensor]}).encode()
    length = str(len(header))
    if rng.random() < 0.2:
        length = rng.choice([str(len(header) + 3), "-1", "abc", "", str(10**15), "0"])
    return {"content-type": "application/octet-stream", HEADER: length}, header + data + tail


def grpc_infer_bytes(rng: random.Random) -> bytes:
    """A serialized `inference.ModelInferRequest`: valid, wrong in its fields, or corrupted on the wire."""
    message = grpc_service_pb2.ModelInferRequest(model_name=rng.choice(["tiny-x2", "tiny-x2", "nope", ""]), id="fuzz")
    for _ in range(rng.choice([1, 1, 1, 2, 0])):
        height, width = rng.randint(1, 12), rng.randint(1, 12)
        item = message.inputs.add(name="IMAGE", datatype="UINT8")
        item.shape.extend([height, width, 3])
        raw = rng.randbytes(height * width * 3)
        for _ in range(rng.choice([0, 1, 1, 2])):
            wrong = rng.choice(["name", "datatype", "shape", "raw", "contents"])
            if wrong == "name":
                item.name = rng.choice(["x", ""])
            elif wrong == "datatype":
                item.datatype = rng.choice(DATATYPES)
            elif wrong == "shape":
                shape = _shape(rng)
                del item.shape[:]
                if isinstance(shape, list):
                    item.shape.extend(int(d) for d in shape if isinstance(d, int) and -(2**63) <= d < 2**63)
            elif wrong == "raw":
                raw = rng.randbytes(rng.choice([0, 3, len(raw) + 1, 4096]))
            else:
                item.contents.uint_contents.extend(rng.randint(0, 2**32 - 1) for _ in range(rng.randint(0, 300)))
        message.raw_input_contents.append(raw)
    data = message.SerializeToString()
    if rng.random() < 0.25 and data:
        data = rng.choice([MUTATORS["truncate"], MUTATORS["flip_bytes"], MUTATORS["splice"]])(data, rng)
    return data


def grpc_superres_bytes(rng: random.Random, seeds: dict[str, bytes]) -> bytes:
    """A serialized `filters.v1.SuperresRequest`: raw pixels that do not add up, or a mutated file."""
    request = filters_pb2.SuperresRequest(scale=rng.choice([0, 2, 3, 4, 99]))
    if rng.random() < 0.5:
        width, height = rng.choice([(8, 8), (0, 8), (2**31 - 1, 2**31 - 1), (65536, 65536), (7, 9)])
        pixels = rng.randbytes(rng.choice([0, 192, width * height * 3 % 5000]))
        request.image.raw.CopyFrom(filters_pb2.RawImage(width=width, height=height, rgb=pixels))
    else:
        request.image.encoded = mutated_image(seeds, rng)[1]
    raw = request.SerializeToString()
    if rng.random() < 0.3 and raw:
        raw = MUTATORS["flip_bytes"](raw, rng)
    return raw


def mutated_video(clip: bytes, rng: random.Random) -> bytes:
    """A small valid container, truncated, flipped, spliced or with repeated chunks."""
    data = clip
    for _ in range(rng.randint(1, 3)):
        step = rng.choice(["truncate", "flip_bytes", "flip_header", "splice", "repeat_chunk"])
        data = MUTATORS[step](data, rng) if data else data
    return data
