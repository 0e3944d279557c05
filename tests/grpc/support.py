"""Helpers of the gRPC tests: channels with large message limits, images as messages, metrics."""

from __future__ import annotations

import re
import struct
import zlib

import grpc
import httpx
import numpy as np

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from tests.support.live_server import LiveServer

CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 2**31 - 1), ("grpc.max_send_message_length", 2**31 - 1)]


def channel(server: LiveServer) -> grpc.Channel:
    return grpc.insecure_channel(server.grpc_target, options=CHANNEL_OPTIONS)


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def raw(rgb: np.ndarray) -> pb.Image:
    return pb.Image(raw=pb.RawImage(width=rgb.shape[1], height=rgb.shape[0], rgb=np.ascontiguousarray(rgb).tobytes()))


def pixels(image: pb.Image) -> np.ndarray:
    assert image.WhichOneof("data") == "raw", "expected a raw image"
    return np.frombuffer(image.raw.rgb, np.uint8).reshape(image.raw.height, image.raw.width, 3)


def metric(server: LiveServer, name: str, **labels: str) -> float:
    """A Prometheus sample of the server (0 if absent)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(re.escape(f"{name}{{{wanted}}}") + r" (\S+)", text)
    return float(match.group(1)) if match else 0.0


def png_with_padding(rgb: np.ndarray, padding_bytes: int) -> bytes:
    """A valid PNG of `rgb` carrying `padding_bytes` in private ancillary chunks that decoders skip:
    a large message with a small image (chunks of 4 MiB: OpenCV refuses chunks over 8 MB)."""
    height, width = rgb.shape[:2]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + b"".join(chunk(b"prVt", bytes(min(4 * 2**20, padding_bytes - o))) for o in range(0, padding_bytes, 4 * 2**20))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
