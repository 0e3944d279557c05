"""tritonclient against the bundled default model (engines/sr-x2): the answer equals the model file
run with onnxruntime directly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from tests.support.data import read_rgb, shared
from tests.support.live_server import REPO_ROOT, LiveServer, start_server

grpcclient = pytest.importorskip("tritonclient.grpc")
httpclient = pytest.importorskip("tritonclient.http")
BUNDLED = REPO_ROOT / "engines"
MODEL = "sr-x2"


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not (BUNDLED / MODEL / "model.toml").exists():
        pytest.skip(f"the bundled model {MODEL} is not in {BUNDLED}")
    env = {"FILTERS_MODELS": f'["{MODEL}"]'}
    live = start_server(BUNDLED, tmp_path_factory.mktemp("bundled") / "server.log", env=env)
    yield live
    live.stop()


def _onnxruntime_reference(model: Path, rgb: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[np.newaxis]
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    return np.clip(y[0].transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def test_tritonclient_runs_the_bundled_default_model(bundled: LiveServer) -> None:
    rgb = np.ascontiguousarray(read_rgb(shared("images/chelsea.png"))[100:148, 150:214])  # 64x48: one tile
    expected = _onnxruntime_reference(BUNDLED / MODEL / "model.onnx", rgb)
    answers = {}
    for kind, module, target in [
        ("http", httpclient, bundled.url.removeprefix("http://")),
        ("grpc", grpcclient, bundled.grpc_target),
    ]:
        client = module.InferenceServerClient(target)
        assert client.is_model_ready(MODEL)
        tensor = module.InferInput("IMAGE", list(rgb.shape), "UINT8")
        tensor.set_data_from_numpy(rgb)
        answers[kind] = client.infer(MODEL, [tensor]).as_numpy("IMAGE")
        client.close()
    assert np.array_equal(answers["http"], answers["grpc"])
    assert answers["grpc"].shape == (96, 128, 3)
    assert int(np.abs(answers["grpc"].astype(int) - expected.astype(int)).max()) <= 1
