"""Output encoding options through the real server, over HTTP and gRPC, with real clients; and the
benchmark tool's gRPC target against it."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from service.bench.__main__ import main as bench_main
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc
from tests.support.data import decode_rgb, png_bytes
from tests.support.live_server import LiveServer

FILTERS = ["up", "sub", "none", "paeth", "adaptive"]


def photo_like(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(0).integers(0, 24, (height, width, 3))
    return ((np.dstack([x * 3, y * 4, x + y]) + noise) % 256).astype(np.uint8)


def superres(server: LiveServer, body: bytes, **params: object) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/superres",
        params={"scale": 2, **params},
        content=body,
        headers={"content-type": "image/png"},
        timeout=60,
    )


def test_every_png_filter_gives_the_same_pixels(server: LiveServer) -> None:
    body = png_bytes(photo_like())
    results = {f: superres(server, body, format="png", png_filter=f) for f in FILTERS}
    for name, response in results.items():
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"] == "image/png"
    reference = decode_rgb(results["up"].content)
    assert reference.shape == (96, 128, 3)
    for name, response in results.items():  # lossless: only the file differs, never the pixels
        np.testing.assert_array_equal(decode_rgb(response.content), reference, err_msg=name)
    levels = [superres(server, body, format="png", quality=q) for q in (0, 9)]
    assert all(r.status_code == 200 for r in levels)
    assert len(levels[1].content) < len(levels[0].content)  # level 9 compresses, level 0 stores


def test_an_unknown_png_filter_is_a_clear_422(server: LiveServer) -> None:
    response = superres(server, png_bytes(photo_like(8, 8)), format="png", png_filter="median")
    assert response.status_code == 422
    assert "png_filter" in response.text
    assert superres(server, png_bytes(photo_like(8, 8))).status_code == 200  # and the server keeps serving


def test_grpc_png_filters_decode_to_the_http_pixels(server: LiveServer) -> None:
    body = png_bytes(photo_like())
    expected = decode_rgb(superres(server, body, format="png").content)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = filters_pb2_grpc.FiltersStub(channel)
        for png_filter in (pb.PNG_FILTER_UNSPECIFIED, pb.PNG_FILTER_SUB, pb.PNG_FILTER_PAETH):
            output = pb.OutputOptions(format=pb.IMAGE_FORMAT_PNG, png_filter=png_filter)
            request = pb.SuperresRequest(image=pb.Image(encoded=body), scale=2, output=output)
            reply = stub.Superres(request, timeout=60)
            np.testing.assert_array_equal(decode_rgb(reply.image.encoded), expected)
        output = pb.OutputOptions(format=pb.IMAGE_FORMAT_PNG, png_filter=42)  # type: ignore[arg-type]
        with pytest.raises(grpc.RpcError) as failure:
            stub.Superres(pb.SuperresRequest(image=pb.Image(encoded=body), scale=2, output=output), timeout=60)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "png_filter" in (failure.value.details() or "")


def test_the_bench_tool_drives_http_and_grpc_alike(server: LiveServer, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(png_bytes(photo_like(20, 30)))
    code = bench_main([
        "--url", server.url, "--grpc-target", server.grpc_target, "--protocol", "http", "grpc",
        "--images", str(images), "--concurrency", "1", "2", "--duration", "0.5", "--warmup", "0",
        "--format", "png", "--png-filter", "sub", "--out", str(tmp_path / "out"), "--name", "both",
    ])  # fmt: skip
    assert code == 0
    table = (tmp_path / "out" / "both.md").read_text()
    for target in ("| http png | 1 |", "| http png | 2 |", "| grpc png | 1 |", "| grpc png | 2 |"):
        assert target in table
    results = json.loads((tmp_path / "out" / "both.json").read_text())["results"]
    assert len(results) == 4 and all(r["requests"] > 0 and r["errors"] == 0 for r in results)
