"""Real-ESRGAN weights as users bring them: imported by our tooling, served, equal to PyTorch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.data import decode_rgb, png_bytes, psnr, read_rgb, shared
from tests.support.live_server import LiveServer, start_server

torch = pytest.importorskip("torch")

NAME = "realesr-animevideov3"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from engines.tooling.export import load_state_dict
    from engines.tooling.realesrgan import import_realesrgan, srvgg_from_state_dict

    weights = shared("models/superres/realesr-animevideov3.pth")
    repository = tmp_path_factory.mktemp("imported")
    import_realesrgan(weights, repository / NAME, NAME)
    return repository, srvgg_from_state_dict(load_state_dict(weights))


@pytest.fixture(scope="module")
def realesr_server(imported: tuple[Path, object], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(imported[0], tmp_path_factory.mktemp("realesr-logs") / "server.log")
    yield live
    live.stop()


def _reference(model: object, rgb: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        y = model(x)[0].permute(1, 2, 0).numpy()  # type: ignore[operator]
    return np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("tile", [None, 64])
def test_served_output_equals_pytorch_on_real_photos(
    imported: tuple[Path, object], realesr_server: LiveServer, tile: int | None
) -> None:
    model = imported[1]
    scores = {}
    for name in ("bus.jpg", "zidane.jpg", "astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"):
        rgb = read_rgb(shared(f"images/{name}"))
        crop = np.ascontiguousarray(rgb[40:200, 60:260])  # 160x200: several tiles at tile=64
        params = {"model": NAME} | ({"tile": str(tile)} if tile else {})
        response = httpx.post(f"{realesr_server.url}/v1/superres", params=params, content=png_bytes(crop[..., ::-1]), timeout=120)
        assert response.status_code == 200, response.text
        served = decode_rgb(response.content)
        assert served.shape == (640, 800, 3)
        scores[name] = psnr(served, _reference(model, crop))
    assert min(scores.values()) >= 50.0, scores
