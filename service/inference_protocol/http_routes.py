"""`/v2`: the Open Inference Protocol over HTTP (KServe v2 REST, with Triton's extensions).

Thin routes over `InferenceProtocol`. Errors use the protocol's own shape, `{"error": "message"}`
(what tritonclient and KServe clients read), mapped here once by the route class. Health answers
200 for true and 400 for false with an empty body, as the protocol specifies.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from service.core import ServingCore
from service.errors import InvalidInput, Overloaded, ServiceError
from service.http.body import read_raw
from service.http.disconnect import cancel_on_disconnect
from service.inference_protocol.http_codec import HEADER_LENGTH, decompress, parse_infer_request, render_infer_response
from service.inference_protocol.protocol import InferenceProtocol
from service.inference_protocol.types import TensorSpec
from service.security.redact import redact_paths


def v2_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": redact_paths(message)}, status_code=status, headers=headers)


class V2Route(APIRoute):
    """Maps `ServiceError`s and parameter errors to the protocol's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as error:
                headers = None
                if isinstance(error, Overloaded):
                    headers = {"Retry-After": str(max(1, math.ceil(error.retry_after_s)))}
                return v2_error(error.http_status, error.message, headers)
            except RequestValidationError as error:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
                return v2_error(400, problems)

        return route


router = APIRouter(prefix="/v2", route_class=V2Route, tags=["inference protocol (v2)"])
TimeoutHeader = Annotated[
    float | None, Header(gt=0, le=3600, description="Seconds until the answer is useless (default from settings).")
]
INFER_BODY = {
    "requestBody": {
        "required": True,
        "description": "JSON tensors, or JSON followed by binary tensor data (Inference-Header-Content-Length).",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def protocol_of(request: Request) -> InferenceProtocol:
    core: ServingCore = request.app.state.core
    return InferenceProtocol(core)


def _flag(value: bool) -> Response:
    return Response(status_code=200 if value else 400)


def _tensors(specs: tuple[TensorSpec, ...]) -> list[dict[str, Any]]:
    return [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in specs]


@router.get("", summary="Server metadata")
async def server_metadata(request: Request) -> dict[str, Any]:
    meta = protocol_of(request).server_metadata()
    return {"name": meta.name, "version": meta.version, "extensions": list(meta.extensions)}


@router.get("/health/live", summary="Liveness: 200")
async def live() -> Response:
    return _flag(True)


@router.get("/health/ready", summary="Readiness: 200 when every model serves, else 400")
async def ready(request: Request) -> Response:
    return _flag(protocol_of(request).ready())


@router.get("/models/{model_name}/ready", summary="Model readiness: 200 or 400")
@router.get("/models/{model_name}/versions/{model_version}/ready", summary="Model readiness: 200 or 400")
async def model_ready(request: Request, model_name: str, model_version: str = "") -> Response:
    return _flag(protocol_of(request).model_ready(model_name, model_version))


@router.get("/models/{model_name}", summary="Model metadata")
@router.get("/models/{model_name}/versions/{model_version}", summary="Model metadata")
async def model_metadata(request: Request, model_name: str, model_version: str = "") -> dict[str, Any]:
    meta = protocol_of(request).model_metadata(model_name, model_version)
    return {
        "name": meta.name,
        "versions": list(meta.versions),
        "platform": meta.platform,
        "inputs": _tensors(meta.inputs),
        "outputs": _tensors(meta.outputs),
    }


@router.get("/models/{model_name}/config", summary="Model configuration (Triton extension)")
@router.get("/models/{model_name}/versions/{model_version}/config", summary="Model configuration (Triton extension)")
async def model_config(request: Request, model_name: str, model_version: str = "") -> dict[str, Any]:
    config = protocol_of(request).model_configuration(model_name, model_version)
    image = "FORMAT_NHWC"
    return {
        "name": config.name,
        "platform": config.platform,
        "backend": config.backend,
        "max_batch_size": config.max_batch_size,
        "input": [
            {"name": s.name, "data_type": f"TYPE_{s.datatype}", "format": image, "dims": list(s.shape)}
            for s in config.inputs
        ],
        "output": [{"name": s.name, "data_type": f"TYPE_{s.datatype}", "dims": list(s.shape)} for s in config.outputs],
        "instance_group": [
            {
                "name": f"{config.name}_0",
                "kind": config.instance_kind,
                "count": config.instance_count,
                "gpus": list(config.gpus),
            }
        ],
        "dynamic_batching": {
            "preferred_batch_size": [config.preferred_batch_size],
            "max_queue_delay_microseconds": config.max_queue_delay_us,
        },
        "parameters": {k: {"string_value": v} for k, v in config.parameters.items()},
    }


@router.post("/repository/index", summary="Repository index (Triton extension)")
async def repository_index(request: Request) -> list[dict[str, str]]:
    ready_only = _ready_only(await read_raw(request, 64 * 1024))
    entries = protocol_of(request).repository_index(ready_only)
    return [{"name": e.name, "version": e.version, "state": e.state, "reason": e.reason} for e in entries]


def _ready_only(body: bytes) -> bool:
    """The index request's body: empty, or `{"ready": true|false}`."""
    if not body.strip():
        return False
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("ready", False), bool):
        raise InvalidInput('the body must be empty or a JSON object like {"ready": true}')
    return bool(document.get("ready", False))


@router.post("/models/{model_name}/infer", summary="Inference", openapi_extra=INFER_BODY)
@router.post("/models/{model_name}/versions/{model_version}/infer", summary="Inference", openapi_extra=INFER_BODY)
async def infer(
    request: Request, model_name: str, model_version: str = "", x_request_timeout: TimeoutHeader = None
) -> Response:
    """One inference. The deadline is the smaller of X-Request-Timeout and the `timeout` parameter."""
    core: ServingCore = request.app.state.core
    protocol = InferenceProtocol(core)
    model = protocol.model(model_name, model_version)
    limit = core.settings.limits.max_body_bytes
    body = decompress(await read_raw(request, limit), request.headers.get("content-encoding"), limit)
    header = request.headers.get(HEADER_LENGTH)
    parsed = await core.offload(parse_infer_request, body, header, model.served.name, model_version)
    prepared = protocol.prepare(model, parsed)
    scope = core.request_scope(model.served, protocol.timeout_s(parsed, x_request_timeout))
    async with scope as ticket, cancel_on_disconnect(request, ticket):
        result = await protocol.run(prepared, ticket)
    content, headers = await core.offload(render_infer_response, result, parsed)
    return Response(content, headers=headers)
