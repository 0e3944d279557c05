"""Style transfer: export by our tooling, served over HTTP, equal to PyTorch, a visible change."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from service.repository.loader import load_model_config
from tests.support.data import decode_rgb, png_bytes, psnr, read_rgb, shared
from tests.support.live_server import LiveServer

torch = pytest.importorskip("torch")


def _reference(weights: Path, rgb: np.ndarray) -> np.ndarray:
    """PyTorch on the image padded to a multiple of 4 by repeating edge pixels, cropped back."""
    from engines.tooling.style_export import load_style_model

    model = load_style_model(weights)
    h, w = rgb.shape[:2]
    padded = np.pad(rgb, ((0, -h % 4), (0, -w % 4), (0, 0)), mode="edge")
    with torch.no_grad():
        out = model(torch.from_numpy(padded.astype(np.float32).transpose(2, 0, 1))[None])[0].numpy()
    return np.clip(out.transpose(1, 2, 0)[:h, :w] + 0.5, 0, 255).astype(np.uint8)


def _style(server: LiveServer, data: bytes, **params: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/style", params=params, content=data, timeout=300)


def test_export_writes_a_valid_entry_that_matches_pytorch(style_repository: Path) -> None:
    log = (style_repository / "export-log.txt").read_text()
    match = re.search(r"max \|diff\| ([0-9.]+)", log)
    assert match is not None, log
    assert float(match.group(1)) < 0.5  # 0-255 units
    config = load_model_config(style_repository / "style-candy" / "model.toml").config
    assert config.task == "style" and config.style is not None and config.style.name == "candy"
    assert config.tiling.size_multiple == 4 and config.inputs[0].value_range == (0.0, 255.0)


def test_served_style_equals_pytorch_and_changes_the_image_visibly(style_server: LiveServer) -> None:
    rgb = np.ascontiguousarray(read_rgb(shared("images/bus.jpg"))[300:550, 200:533])  # 333x250: padded to 4s
    response = _style(style_server, png_bytes(rgb[..., ::-1]), style="candy")
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == "style-candy"
    out = decode_rgb(response.content)
    assert out.shape == rgb.shape
    assert int(out.max()) - int(out.min()) > 150  # the full 0-255 range is used, not a washed-out band
    change = np.abs(out.astype(float) - rgb).mean()
    assert change > 20.0, change  # visibly stylised
    expected = _reference(shared("models/style/fnst_mobilenetv2_candy.pth"), rgb)
    assert np.abs(out.astype(int) - expected).max() <= 2


def test_styles_differ_and_are_chosen_by_style_or_model_name(style_server: LiveServer) -> None:
    data = shared("sr/Set5/butterfly.png").read_bytes()
    candy = decode_rgb(_style(style_server, data, style="candy").content)
    mosaic = _style(style_server, data, model="style-mosaic")
    assert mosaic.status_code == 200 and mosaic.headers["x-model"] == "style-mosaic"
    assert np.abs(candy.astype(float) - decode_rgb(mosaic.content)).mean() > 10.0


def test_a_large_image_runs_in_tiles_and_keeps_its_size(style_server: LiveServer) -> None:
    """A 600x520 crop is over the 512-pixel tile: 4 tiles with overlap, close to the whole-image
    result (InstanceNorm statistics differ per tile, so not equal; docs/filters.md)."""
    rgb = np.ascontiguousarray(read_rgb(shared("images/bus.jpg"))[200:720, 100:700])
    response = _style(style_server, png_bytes(rgb[..., ::-1]), style="mosaic", format="jpeg", quality="95")
    assert response.status_code == 200, response.text
    out = decode_rgb(response.content)
    assert out.shape == rgb.shape
    whole = _reference(shared("models/style/fnst_mobilenetv2_mosaic.pth"), rgb)
    assert np.abs(out.astype(float) - rgb).mean() > 20.0
    assert psnr(out, whole) > 18.0


def test_style_errors_name_the_loaded_styles(style_server: LiveServer) -> None:
    data = shared("sr/Set5/butterfly.png").read_bytes()
    unknown = _style(style_server, data, style="starry-night")
    assert unknown.status_code == 404 and "candy" in unknown.json()["error"]["message"]
    unnamed = _style(style_server, data)
    assert unnamed.status_code == 404 and "mosaic" in unnamed.json()["error"]["message"]
    odd_tile = _style(style_server, data, style="candy", tile="100")
    assert odd_tile.status_code == 422, odd_tile.text
    assert _style(style_server, data, style="candy").status_code == 200
