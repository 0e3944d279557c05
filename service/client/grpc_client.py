"""A small blocking client of the `filters.v1` gRPC API (grpc's sync channel).

with FiltersClient("127.0.0.1:8001") as client:
    png = client.superres(open("photo.jpg", "rb").read(), scale=4).image
    for result in client.stream_frames(frames, scale=2):   # frames: HxWx3 uint8 RGB arrays
        ...                                                  # results in the frames' order
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc

MAX_MESSAGE_BYTES = 2**31 - 1
CHUNK_BYTES = 1 << 20
FORMATS = {
    "png": pb.IMAGE_FORMAT_PNG,
    "jpeg": pb.IMAGE_FORMAT_JPEG,
    "webp": pb.IMAGE_FORMAT_WEBP,
    "raw": pb.IMAGE_FORMAT_RAW,
}
Picture = bytes | np.ndarray  # encoded file bytes, or HxWx3 uint8 RGB pixels


@dataclass(frozen=True)
class Result:
    """One answer: the image (bytes if encoded, an HxWx3 array if raw), the model, stage timings."""

    image: Picture
    model: str
    timing_ms: dict[str, float]
    sequence: int = 0


def to_image(picture: Picture) -> pb.Image:
    """An `Image` message from file bytes or an HxWx3 uint8 RGB array."""
    if isinstance(picture, bytes):
        return pb.Image(encoded=picture)
    rgb = np.ascontiguousarray(picture, np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"raw images are HxWx3 RGB arrays, got shape {rgb.shape}")
    return pb.Image(raw=pb.RawImage(width=rgb.shape[1], height=rgb.shape[0], rgb=rgb.tobytes()))


def from_image(image: pb.Image) -> Picture:
    """File bytes, or an HxWx3 uint8 RGB array for a raw image."""
    if image.WhichOneof("data") == "raw":
        raw = image.raw
        return np.frombuffer(raw.rgb, np.uint8).reshape(raw.height, raw.width, 3)
    return image.encoded


def output_options(format: str | None, quality: int | None) -> pb.OutputOptions:
    options = pb.OutputOptions(format=FORMATS[format] if format else pb.IMAGE_FORMAT_UNSPECIFIED)
    if quality is not None:
        options.quality = quality
    return options


class FiltersClient:
    """One channel to a filters server; every call takes an optional deadline in seconds."""

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if credentials is None:
            self.channel = grpc.insecure_channel(target, options=options)
        else:
            self.channel = grpc.secure_channel(target, credentials, options=options)
        self.stub = filters_pb2_grpc.FiltersStub(self.channel)  # type: ignore[no-untyped-call]
        self.metadata = tuple(metadata)

    def __enter__(self) -> FiltersClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def superres(
        self,
        picture: Picture,
        *,
        scale: int | None = None,
        model: str | None = None,
        format: str | None = None,
        quality: int | None = None,
        tile: int | None = None,
        timeout_s: float | None = None,
    ) -> Result:
        """Upscale one image (raw in -> raw out unless `format` says otherwise; bytes in -> PNG)."""
        request = pb.SuperresRequest(
            image=to_image(picture),
            scale=scale or 0,
            model=model or "",
            output=output_options(format, quality),
            tile=tile or 0,
        )
        response = self.stub.Superres(request, timeout=timeout_s, metadata=self.metadata)
        return Result(from_image(response.image), response.model, dict(response.timing_ms))

    def stream_frames(
        self,
        frames: Iterable[Picture],
        *,
        scale: int | None = None,
        model: str | None = None,
        format: str | None = None,
        max_in_flight: int = 0,
        timeout_s: float | None = None,
    ) -> Iterator[Result]:
        """Send `frames` on one stream (lazily, as the server takes them); results come in order."""
        config = pb.StreamConfig(
            scale=scale or 0, model=model or "", output=output_options(format, None), max_in_flight=max_in_flight
        )

        def requests() -> Iterator[pb.FrameStreamRequest]:
            yield pb.FrameStreamRequest(config=config)
            for sequence, picture in enumerate(frames):
                yield pb.FrameStreamRequest(frame=pb.Frame(sequence=sequence, image=to_image(picture)))

        call = self.stub.StreamFrames(requests(), timeout=timeout_s, metadata=self.metadata)
        try:
            for result in call:
                yield Result(from_image(result.image), result.model, dict(result.timing_ms), result.sequence)
        finally:
            call.cancel()  # a consumer that stops early ends the stream (no-op once it has ended)

    def process_video(
        self,
        source: Path,
        output: Path,
        *,
        task: str = "superres",
        scale: int | None = None,
        model: str | None = None,
        container: str = "mp4",
        codec: str = "h264",
        crf: int | None = None,
        timeout_s: float | None = None,
    ) -> pb.VideoSummary:
        """Upload a video file in chunks and write the filtered file as it streams back."""
        size = source.stat().st_size
        config = pb.VideoConfig(
            task=task, scale=scale or 0, model=model or "", container=container, codec=codec, quality=crf or 0
        )
        config.size_bytes = size

        def requests() -> Iterator[pb.VideoRequest]:
            yield pb.VideoRequest(config=config)
            with source.open("rb") as file:
                while chunk := file.read(CHUNK_BYTES):
                    yield pb.VideoRequest(chunk=chunk)

        summary = pb.VideoSummary()
        with output.open("wb") as out:
            for response in self.stub.ProcessVideo(requests(), timeout=timeout_s, metadata=self.metadata):
                if response.WhichOneof("kind") == "chunk":
                    out.write(response.chunk)
                else:
                    summary = response.summary
        return summary

    def list_models(self, timeout_s: float | None = 10.0) -> list[pb.ModelInfo]:
        return list(self.stub.ListModels(pb.ListModelsRequest(), timeout=timeout_s, metadata=self.metadata).models)

    def health(self, service: str = "", timeout_s: float | None = 10.0) -> str:
        """`SERVING` or `NOT_SERVING` (standard gRPC health checking)."""
        stub = health_pb2_grpc.HealthStub(self.channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s, metadata=self.metadata)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
