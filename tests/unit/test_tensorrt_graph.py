"""The ONNX rewrites the TensorRT builder makes, checked with onnxruntime (no TensorRT needed).

`wrap_uint8_io` must compute exactly what the CPU runtime computes (numpy conversion around the
unwrapped model) for every layout, dtype, value range and channel order; `to_float16` must keep
the model's function to FP16 rounding and leave Resize's scales in float32.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from service.repository.config import ImageTensor
from service.repository.loader import load_model_config
from service.runtimes.tensorrt.graph import to_float16, wrap_uint8_io
from service.runtimes.tensors import pixels_to_tensor, tensor_to_pixels
from tests.support.data import psnr
from tests.support.tiny_models import IR_VERSION, write_sr_entry

_ELEM = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "uint8": TensorProto.UINT8}
SPECS = [
    ImageTensor(name="x", layout=layout, dtype=dtype, value_range=rng, channel_order=order)  # type: ignore[arg-type]
    for layout, dtype, rng, order in itertools.product(
        ["NCHW", "NHWC"], ["float32", "float16"], [(0.0, 1.0), (-1.0, 1.0), (0.0, 255.0)], ["RGB", "BGR"]
    )
] + [ImageTensor(name="x", layout="NHWC", dtype="uint8", value_range=(0.0, 255.0))]


def channel_model(spec: ImageTensor) -> onnx.ModelProto:
    """y = Resize x2 (nearest) of x * per-channel weights: a wrong channel order or layout shows."""
    nchw = spec.layout == "NCHW"
    dims = ["N", 3, "H", "W"] if nchw else ["N", "H", "W", 3]
    out_dims = ["N", 3, "H2", "W2"] if nchw else ["N", "H2", "W2", 3]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2] if nchw else [1, 2, 2, 1], np.float32), "scales")
    nodes, inits, x = [], [scales], "x"
    if spec.dtype != "uint8":
        dtype = np.float16 if spec.dtype == "float16" else np.float32
        weights = np.array([0.6, 1.0, 1.3], dtype).reshape((1, 3, 1, 1) if nchw else (1, 1, 1, 3))
        inits.append(numpy_helper.from_array(weights, "w"))
        nodes.append(helper.make_node("Mul", ["x", "w"], ["xw"]))
        x = "xw"
    nodes.append(helper.make_node("Resize", [x, "", "scales"], ["y"], mode="nearest"))
    graph = helper.make_graph(
        nodes, "channels", [helper.make_tensor_value_info("x", _ELEM[spec.dtype], dims)],
        [helper.make_tensor_value_info("y", _ELEM[spec.dtype], out_dims)], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    return model


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0])


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.layout}-{s.dtype}-{s.value_range}-{s.channel_order}")
def test_wrapped_graph_equals_the_cpu_runtime_conversion(spec: ImageTensor) -> None:
    model = channel_model(spec)
    out_spec = spec.model_copy(update={"name": "y"})
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    expected = tensor_to_pixels(run(model, {"x": pixels_to_tensor(pixels, spec)}), out_spec)
    wrapped = wrap_uint8_io(model, [spec], [out_spec])
    assert [i.type.tensor_type.elem_type for i in [*wrapped.graph.input, *wrapped.graph.output]] == [TensorProto.UINT8] * 2
    actual = run(wrapped, {"x": pixels})
    assert actual.shape == (2, 10, 14, 3)
    if spec.dtype != "float16":
        np.testing.assert_array_equal(actual, expected)
    else:  # onnxruntime's CPU runs float16 ops in float32 and drops the Cast pair the wrapper adds: 1 LSB
        difference = np.abs(actual.astype(int) - expected)
        assert difference.max() <= 1 and (difference > 0).mean() < 0.05


def test_tensor_kind_io_is_left_alone() -> None:
    spec = ImageTensor(name="x", kind="tensor")
    model = channel_model(ImageTensor(name="x"))
    wrapped = wrap_uint8_io(model, [spec], [spec.model_copy(update={"name": "y"})])
    assert wrapped.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert len(wrapped.graph.node) == len(model.graph.node)


def test_a_name_model_toml_declares_must_exist() -> None:
    with pytest.raises(ValueError, match="no input named 'image'"):
        wrap_uint8_io(channel_model(ImageTensor(name="x")), [ImageTensor(name="image")], [])


def test_float16_graph_keeps_the_function_and_resize_scales(tmp_path: Path) -> None:
    folder = write_sr_entry(tmp_path, "tiny-x4", 4, features=16)
    loaded = load_model_config(folder / "model.toml")
    model = onnx.load(str(folder / "model.onnx"))
    half = to_float16(model)
    types = {i.name: i.data_type for i in half.graph.initializer}
    assert types["scales"] == TensorProto.FLOAT and types["c1_w"] == TensorProto.FLOAT16
    onnx.shape_inference.infer_shapes(half, strict_mode=True)  # every op's types agree
    pixels = np.random.default_rng(1).integers(0, 256, (2, 24, 40, 3), dtype=np.uint8)
    io = (loaded.config.inputs, loaded.config.outputs)
    full, reduced = run(wrap_uint8_io(model, *io), {"input": pixels}), run(wrap_uint8_io(half, *io), {"input": pixels})
    assert reduced.dtype == np.uint8 and reduced.shape == full.shape == (2, 96, 160, 3)
    assert psnr(reduced, full) > 45
