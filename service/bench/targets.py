"""How one request is sent: over HTTP to /v1/superres, or over gRPC to `filters.v1.Filters/Superres`.

A target is a `SendOne`: `send(i)` sends the i-th request (bodies round-robin) and says whether it
succeeded; the closed loop (`loadgen.py`) is the same for every target.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import httpx

from service.bench.loadgen import SendOne
from service.grpc.generated.filters.v1 import filters_pb2 as pb
from service.grpc.generated.filters.v1 import filters_pb2_grpc

GRPC_FORMATS = {"png": pb.IMAGE_FORMAT_PNG, "jpeg": pb.IMAGE_FORMAT_JPEG, "webp": pb.IMAGE_FORMAT_WEBP}
GRPC_PNG_FILTERS = {
    "up": pb.PNG_FILTER_UP,
    "sub": pb.PNG_FILTER_SUB,
    "none": pb.PNG_FILTER_NONE,
    "paeth": pb.PNG_FILTER_PAETH,
    "adaptive": pb.PNG_FILTER_ADAPTIVE,
}
MAX_MESSAGE_BYTES = 2**31 - 1


def http_superres(
    client: httpx.AsyncClient, url: str, bodies: Sequence[bytes], params: dict[str, str], content_type: str
) -> SendOne:
    """POST bodies round-robin to `url`/v1/superres; success is a 200 with a non-empty body."""

    async def send(index: int) -> bool:
        body = bodies[index % len(bodies)]
        headers = {"content-type": content_type}
        response = await client.post(f"{url}/v1/superres", params=params, content=body, headers=headers)
        return response.status_code == 200 and len(response.content) > 0

    return send


def grpc_channel(target: str) -> grpc.aio.Channel:
    """An insecure grpc.aio channel that takes messages of any size (4K answers are megabytes)."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    return grpc.aio.insecure_channel(target, options=options)


def grpc_output(params: dict[str, str]) -> pb.OutputOptions:
    """The gRPC `OutputOptions` of the HTTP query parameters `format`, `quality`, `png_filter`."""
    output = pb.OutputOptions(format=GRPC_FORMATS[params.get("format", "png")])
    if "quality" in params:
        output.quality = int(params["quality"])
    if "png_filter" in params:
        output.png_filter = GRPC_PNG_FILTERS[params["png_filter"]]
    return output


def grpc_superres(channel: grpc.aio.Channel, bodies: Sequence[bytes], params: dict[str, str]) -> SendOne:
    """`Filters/Superres` with bodies round-robin as encoded images; success is an OK status and a
    non-empty encoded image. `params` as for HTTP: model, scale, format, quality, png_filter."""
    stub = filters_pb2_grpc.FiltersStub(channel)  # type: ignore[no-untyped-call]
    output = grpc_output(params)
    model, scale = params.get("model", ""), int(params.get("scale", "0"))

    async def send(index: int) -> bool:
        image = pb.Image(encoded=bodies[index % len(bodies)])
        request = pb.SuperresRequest(image=image, model=model, scale=scale, output=output)
        try:
            response = await stub.Superres(request)
        except grpc.aio.AioRpcError:
            return False
        return len(response.image.encoded) > 0

    return send
