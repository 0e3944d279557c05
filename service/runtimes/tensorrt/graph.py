"""ONNX rewrites made before a TensorRT build: uint8 NHWC image I/O folded into the graph, and FP16.

`wrap_uint8_io` gives every `kind = "image"` input and output the service's own pixel format,
uint8 NHWC RGB, and does the conversion inside the graph with the arithmetic of
`service/runtimes/tensors.py`:

    input:  uint8 NHWC -> Cast(float) [-> Gather BGR] [-> Transpose NCHW] -> Mul -> [Add] -> Cast(model dtype)
    output: model -> Cast(float) [-> Sub] -> Mul -> Add 0.5 -> Clip 0..255 -> Floor [-> Transpose NHWC]
            [-> Gather BGR] -> Cast(uint8)

so the TensorRT slot moves only uint8 over the bus and needs no CUDA kernel of its own. Tensor
names stay what model.toml declares. `to_float16` turns a float32 model into a float16 one (I/O
included; the wrapper then casts to and from it), which TensorRT 11 needs: it builds strongly
typed networks only. `WRAP_VERSION` is part of the engine cache key: bump it when these rewrites
change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from service.repository.config import ImageTensor

WRAP_VERSION = 1
_FLOAT32_ONLY = {"Resize": (1, 2), "Upsample": (1,)}  # roi/scales inputs stay float32


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` computing in float16: float initializers, constants, casts and I/O."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    keep = {node.input[i] for node in graph.node for i in _FLOAT32_ONLY.get(node.op_type, ()) if i < len(node.input)}
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and init.name not in keep:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                if node.op_type == "Constant" and node.output[0] in keep:
                    continue
                half = numpy_helper.to_array(attr.t).astype(np.float16)
                attr.t.CopyFrom(numpy_helper.from_array(half, attr.t.name))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
    for value in [*graph.input, *graph.output]:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    del graph.value_info[:]  # stale types; shape inference recomputes them
    onnx.checker.check_model(out)
    return out


def wrap_uint8_io(
    model: onnx.ModelProto, inputs: Sequence[ImageTensor], outputs: Sequence[ImageTensor]
) -> onnx.ModelProto:
    """A copy of `model` whose image inputs and outputs are uint8 NHWC RGB (see the module docstring)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    nodes: list[onnx.NodeProto] = []
    for spec in (s for s in inputs if s.kind == "image"):
        nodes += _wrap_input(graph, spec)
    tail: list[onnx.NodeProto] = []
    for spec in (s for s in outputs if s.kind == "image"):
        tail += _wrap_output(graph, spec)
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *body, *tail])
    del graph.value_info[:]
    onnx.checker.check_model(out)
    return out


def _value(graph: onnx.GraphProto, name: str, outputs: bool) -> onnx.ValueInfoProto:
    values = graph.output if outputs else graph.input
    for value in values:
        if value.name == name:
            found: onnx.ValueInfoProto = value
            return found
    kind = "output" if outputs else "input"
    raise ValueError(f"the ONNX graph has no {kind} named '{name}' (model.toml declares it)")


def _dims(value: onnx.ValueInfoProto, layout: str) -> list[int | str]:
    shape = value.type.tensor_type.shape.dim
    dims: list[int | str] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape]
    if len(dims) != 4:
        raise ValueError(f"image tensor '{value.name}' has {len(dims)} dimensions, not 4")
    return [dims[0], dims[2], dims[3], dims[1]] if layout == "NCHW" else dims


def _const(graph: onnx.GraphProto, name: str, values: float | Sequence[float] | Sequence[int], dtype: type) -> str:
    graph.initializer.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
    return name


def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _wrap_input(graph: onnx.GraphProto, spec: ImageTensor) -> list[onnx.NodeProto]:
    value = _value(graph, spec.name, outputs=False)
    inner = f"{spec.name}__model"
    model_type = value.type.tensor_type.elem_type
    _rename_uses(graph, spec.name, inner)
    dims = _dims(value, spec.layout)
    graph.input.remove(value)
    graph.input.append(helper.make_tensor_value_info(spec.name, TensorProto.UINT8, dims))
    p = f"__wrap_in_{spec.name}"
    nodes, x = [], spec.name
    raw = model_type == TensorProto.UINT8 and spec.value_range == (0.0, 255.0)
    if not raw:
        nodes.append(helper.make_node("Cast", [x], [f"{p}_f"], to=TensorProto.FLOAT))
        x = f"{p}_f"
    if spec.channel_order == "BGR":
        order = _const(graph, f"{p}_bgr", [2, 1, 0], np.int64)
        nodes.append(helper.make_node("Gather", [x, order], [f"{p}_bgr_out"], axis=3))
        x = f"{p}_bgr_out"
    if spec.layout == "NCHW":
        nodes.append(helper.make_node("Transpose", [x], [f"{p}_nchw"], perm=[0, 3, 1, 2]))
        x = f"{p}_nchw"
    if not raw:
        low, high = spec.value_range
        scale = _const(graph, f"{p}_scale", [(high - low) / 255.0], np.float32)
        nodes.append(helper.make_node("Mul", [x, scale], [f"{p}_mul"]))
        x = f"{p}_mul"
        if low:
            nodes.append(helper.make_node("Add", [x, _const(graph, f"{p}_low", [low], np.float32)], [f"{p}_add"]))
            x = f"{p}_add"
        nodes.append(helper.make_node("Cast", [x], [inner], to=model_type))
    else:
        nodes.append(helper.make_node("Identity", [x], [inner]))
    return nodes


def _wrap_output(graph: onnx.GraphProto, spec: ImageTensor) -> list[onnx.NodeProto]:
    value = _value(graph, spec.name, outputs=True)
    inner = f"{spec.name}__model"
    model_type = value.type.tensor_type.elem_type
    for node in graph.node:
        for i, name in enumerate(node.output):
            if name == spec.name:
                node.output[i] = inner
    _rename_uses(graph, spec.name, inner)
    dims = _dims(value, spec.layout)
    graph.output.remove(value)
    graph.output.append(helper.make_tensor_value_info(spec.name, TensorProto.UINT8, dims))
    p = f"__wrap_out_{spec.name}"
    nodes, x = [], inner
    raw = model_type == TensorProto.UINT8 and spec.value_range == (0.0, 255.0)
    if not raw:
        low, high = spec.value_range
        nodes.append(helper.make_node("Cast", [x], [f"{p}_f"], to=TensorProto.FLOAT))
        x = f"{p}_f"
        if low:
            nodes.append(helper.make_node("Sub", [x, _const(graph, f"{p}_low", [low], np.float32)], [f"{p}_sub"]))
            x = f"{p}_sub"
        steps = [("Mul", [255.0 / (high - low)]), ("Add", [0.5])]
        for op, operand in steps:
            constant = _const(graph, f"{p}_{op}", operand, np.float32)
            nodes.append(helper.make_node(op, [x, constant], [f"{p}_{op}_out"]))
            x = f"{p}_{op}_out"
        bounds = [_const(graph, f"{p}_min", 0.0, np.float32), _const(graph, f"{p}_max", 255.0, np.float32)]
        nodes.append(helper.make_node("Clip", [x, *bounds], [f"{p}_clip"]))
        nodes.append(helper.make_node("Floor", [f"{p}_clip"], [f"{p}_floor"]))
        x = f"{p}_floor"
    if spec.layout == "NCHW":
        nodes.append(helper.make_node("Transpose", [x], [f"{p}_nhwc"], perm=[0, 2, 3, 1]))
        x = f"{p}_nhwc"
    if spec.channel_order == "BGR":
        order = _const(graph, f"{p}_bgr", [2, 1, 0], np.int64)
        nodes.append(helper.make_node("Gather", [x, order], [f"{p}_rgb"], axis=3))
        x = f"{p}_rgb"
    nodes.append(helper.make_node("Cast", [x], [spec.name], to=TensorProto.UINT8))
    return nodes
