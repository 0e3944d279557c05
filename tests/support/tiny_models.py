"""Tiny real ONNX models built by the tests (no downloaded weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 10  # onnxruntime 1.31 reads IR <= 11; the newest onnx writes 14


def _conv(
    name: str, x: str, out: str, cin: int, cout: int, rng: np.random.Generator
) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
    weight = (rng.standard_normal((cout, cin, 3, 3)) * (0.5 / (cin * 3))).astype(np.float32)
    bias = np.zeros(cout, np.float32)
    inits = [numpy_helper.from_array(weight, f"{name}_w"), numpy_helper.from_array(bias, f"{name}_b")]
    node = helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [out], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    return node, inits


def make_sr_onnx(path: Path, scale: int, seed: int = 0, features: int = 8) -> Path:
    """x`scale` SR net: 2 convs (receptive-field radius 2) -> DepthToSpace, plus a nearest residual.

    float32 NCHW RGB [0,1] in and out, dynamic batch/height/width.
    """
    rng = np.random.default_rng(seed)
    conv1, init1 = _conv("c1", "input", "h1", 3, features, rng)
    relu = helper.make_node("Relu", ["h1"], ["a1"])
    conv2, init2 = _conv("c2", "a1", "h2", features, 3 * scale * scale, rng)
    shuffle = helper.make_node("DepthToSpace", ["h2"], ["detail"], blocksize=scale, mode="CRD")
    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales")
    resize = helper.make_node("Resize", ["input", "", "scales"], ["base"], mode="nearest")
    add = helper.make_node("Add", ["base", "detail"], ["output"])
    graph = helper.make_graph(
        [conv1, relu, conv2, shuffle, resize, add],
        f"tiny_sr_x{scale}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H2", "W2"])],
        initializer=init1 + init2 + [scales],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_sr_entry(
    root: Path,
    name: str,
    scale: int,
    *,
    tile_size: int = 64,
    overlap: int = 4,
    max_batch_size: int = 8,
    max_queue_delay_ms: float = 2.0,
    max_queued_requests: int = 64,
    instances: int = 1,
    seed: int = 0,
    default: bool = False,
    features: int = 8,
) -> Path:
    """A model-repository folder `root/name` with a tiny SR model and its model.toml."""
    folder = root / name
    make_sr_onnx(folder / "model.onnx", scale, seed, features)
    (folder / "model.toml").write_text(
        f"""name = "{name}"
task = "superres"
description = "tiny test model x{scale}"
[files]
onnx = "model.onnx"
[[inputs]]
name = "input"
[[outputs]]
name = "output"
[superres]
scale = {scale}
default = {str(default).lower()}
[tiling]
tile_size = {tile_size}
overlap = {overlap}
[batching]
max_batch_size = {max_batch_size}
max_queue_delay_ms = {max_queue_delay_ms}
max_queued_requests = {max_queued_requests}
[instances]
count = {instances}
""",
        encoding="utf-8",
    )
    return folder
