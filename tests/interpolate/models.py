"""Interpolation model-repository entries for the tests: the bundled classical model and tiny
RIFE-style ONNX models (two frames and a time step in, the frame between out)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.support.live_server import REPO_ROOT
from tests.support.tiny_models import IR_VERSION

MULTIPLE = 32  # like RIFE: the tiny models fail unless height and width are multiples of 32


def copy_bundled_dis(root: Path) -> Path:
    """The bundled classical interpolator's folder (a model.toml, no weights)."""
    return Path(shutil.copytree(REPO_ROOT / "engines" / "interpolate-dis", root / "interpolate-dis"))


def _blend_graph(timestep: str | None) -> onnx.ModelProto:
    """out = img0 * (1 - t) + img1 * t (t = 0.5 without a time-step input), passed through
    SpaceToDepth/DepthToSpace by 32 so that other sizes fail as RIFE's do."""
    inits = [numpy_helper.from_array(np.array(1.0, np.float32), "one")]
    inputs = [
        helper.make_tensor_value_info("img0", TensorProto.FLOAT, ["N", 3, "H", "W"]),
        helper.make_tensor_value_info("img1", TensorProto.FLOAT, ["N", 3, "H", "W"]),
    ]
    if timestep is None:
        inits.append(numpy_helper.from_array(np.array(0.5, np.float32), "t"))
        t = "t"
    else:
        shape = ["N", 1, 1, 1] if timestep == "scalar" else ["N", 1, "H", "W"]
        inputs.append(helper.make_tensor_value_info("timestep", TensorProto.FLOAT, shape))
        t = "timestep"
    nodes = [
        helper.make_node("Sub", ["one", t], ["keep"]),
        helper.make_node("Mul", ["img0", "keep"], ["part0"]),
        helper.make_node("Mul", ["img1", t], ["part1"]),
        helper.make_node("Add", ["part0", "part1"], ["blend"]),
        helper.make_node("SpaceToDepth", ["blend"], ["blocks"], blocksize=MULTIPLE),
        helper.make_node("DepthToSpace", ["blocks"], ["merged"], blocksize=MULTIPLE, mode="DCR"),
    ]
    output = helper.make_tensor_value_info("merged", TensorProto.FLOAT, ["N", 3, "H", "W"])
    graph = helper.make_graph(nodes, "tiny_rife", inputs, [output], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def write_rife_like(root: Path, name: str, timestep: str | None) -> Path:
    """A RIFE-style entry: img0, img1 (RGB [0, 1]) and a time step `scalar` ([N,1,1,1]), `map`
    ([N,1,H,W]) or None (the model makes the middle frame), output `merged`, sizes padded to 32."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(_blend_graph(timestep), str(folder / "model.onnx"))
    step_input = '[[inputs]]\nname = "timestep"\nkind = "tensor"\n' if timestep else ""
    section = f'timestep_input = "timestep"\ntimestep_shape = "{timestep}"\n' if timestep else ""
    (folder / "model.toml").write_text(
        f"""name = "{name}"
task = "interpolate"
[files]
onnx = "model.onnx"
[[inputs]]
name = "img0"
[[inputs]]
name = "img1"
{step_input}[[outputs]]
name = "merged"
[interpolate]
{section}[tiling]
tile_size = 64
overlap = 0
size_multiple = {MULTIPLE}
[batching]
max_batch_size = 4
""",
        encoding="utf-8",
    )
    return folder
