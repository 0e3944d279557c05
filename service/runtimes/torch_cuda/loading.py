"""Where the torch runtime gets its `nn.Module`: a `torch.export` program, else the ONNX file.

- `files.torch = "model.pt2"`: a `torch.export.save`d ExportedProgram (exported with dynamic batch,
  height and width), loaded with `torch.export.load(...).module()`.
- otherwise `files.onnx`, converted with onnx2torch (pure Python; it imports torchvision). The
  model repository's ONNX files (Conv, PRelu/Relu, DepthToSpace, Gather, Resize nearest, Add)
  convert to a `torch.fx.GraphModule` of plain torch ops that matches onnxruntime to ~1e-6.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from service.errors import UnrecoverableError
from service.repository.config import LoadedConfig

if TYPE_CHECKING:  # onnx and torch are optional for the server: imported where used
    import onnx
    from torch import nn

ONNX2TORCH_HINT = "pip install 'filters-service[gpu]'"


def source_problem(model: LoadedConfig) -> str | None:
    """Why no module can be loaded for `model` here, or None if one can."""
    program = model.file("torch")
    if program is not None:
        if program.suffix != ".pt2":
            return f"files.torch '{program.name}' is not a torch.export program (.pt2)"
        return None
    if model.file("onnx") is None:
        return "the model names neither a torch program (files.torch) nor an ONNX file"
    try:
        import onnx2torch  # noqa: F401
    except Exception as exc:  # ImportError, or torchvision failing to load its operators
        return f"converting the ONNX file needs onnx2torch ({ONNX2TORCH_HINT}): {type(exc).__name__}: {exc}"
    return None


def load_module(model: LoadedConfig) -> nn.Module:
    """The model as a torch module on the CPU, in float32, ready for inference (eval mode)."""
    program = model.file("torch")
    try:
        if program is not None:
            import torch

            # exported in eval mode already; unlifted exported modules refuse .train()/.eval()
            exported: nn.Module = torch.export.load(str(program)).module()
            return exported
        import onnx
        import onnx2torch

        onnx_path = model.file("onnx")
        assert onnx_path is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # onnx2torch warns about Resize rounding modes it maps exactly
            module: nn.Module = onnx2torch.convert(fill_optional_clip_bounds(onnx.load(str(onnx_path))))
        return module.eval()
    except Exception as exc:
        source = program or model.file("onnx")
        raise UnrecoverableError(f"cannot load {source} for model '{model.config.name}' into torch: {exc}") from exc


def fill_optional_clip_bounds(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with every omitted Clip `min` given as -inf (onnx2torch cannot read an empty input).

    `torch.clamp(x, max=0)` exports as `Clip(x, "", max)`; onnx2torch looks the empty name up as a
    constant and fails. Clip with min = -inf computes the same.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    for index, node in enumerate(out.graph.node):
        if node.op_type == "Clip" and len(node.input) > 2 and node.input[1] == "":
            name = f"__clip_min_{index}"
            out.graph.initializer.append(numpy_helper.from_array(np.array(-np.inf, np.float32), name))
            node.input[1] = name
    return out
