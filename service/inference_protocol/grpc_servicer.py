"""`inference.GRPCInferenceService`: the Open Inference Protocol over gRPC, as tritonclient speaks it.

Thin methods over `InferenceProtocol`; errors are raised as `ServiceError`s and mapped by the gRPC
front's interceptor, except in ModelStreamInfer, where (as in Triton) an error answers that one
request in-band (`error_message`) and the stream goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeAlias

import grpc

from service.core import ServingCore
from service.errors import ServiceError, Unimplemented
from service.grpc.calls import cancel_with_call, time_left
from service.grpc.streaming import ordered_window, until_draining
from service.inference_protocol import grpc_codec as codec
from service.inference_protocol.protocol import InferenceProtocol
from service.inference_protocol.stubs import service_pb2 as pb
from service.inference_protocol.stubs import service_pb2_grpc as grpc_service_pb2_grpc
from service.security.redact import redact_paths

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def _unsupported(feature: str) -> Callable[[Any, Any, Context], Awaitable[NoReturn]]:
    async def method(self: Any, request: Any, context: Context) -> NoReturn:
        raise Unimplemented(f"{feature} is not supported by this server")

    return method


class InferenceServicer(grpc_service_pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """Health, metadata, configuration, repository index and inference over the serving core."""

    def __init__(self, core: ServingCore) -> None:
        self.core = core
        self.protocol = InferenceProtocol(core)

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: Context) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.protocol.ready())

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self.protocol.model_ready(request.name, request.version))

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> pb.ServerMetadataResponse:
        meta = self.protocol.server_metadata()
        return pb.ServerMetadataResponse(name=meta.name, version=meta.version, extensions=list(meta.extensions))

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> pb.ModelMetadataResponse:
        return codec.model_metadata(self.protocol.model_metadata(request.name, request.version))

    async def ModelConfig(self, request: pb.ModelConfigRequest, context: Context) -> pb.ModelConfigResponse:
        return codec.model_config(self.protocol.model_configuration(request.name, request.version))

    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest, context: Context) -> pb.RepositoryIndexResponse:
        return codec.repository_index(self.protocol.repository_index(request.ready))

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> pb.ModelInferResponse:
        parsed = codec.infer_request(request)
        model = self.protocol.model(parsed.model_name, parsed.model_version)
        prepared = self.protocol.prepare(model, parsed)
        timeout = self.protocol.timeout_s(parsed, time_left(context))
        async with self.core.request_scope(model.served, timeout) as ticket, cancel_with_call(context, ticket):
            result = await self.protocol.run(prepared, ticket)
        return codec.infer_response(result)

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[pb.ModelInferRequest], context: Context
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        async def handle(request: pb.ModelInferRequest) -> pb.ModelStreamInferResponse:
            try:
                return pb.ModelStreamInferResponse(infer_response=await self.ModelInfer(request, context))
            except ServiceError as error:
                answered = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
                return pb.ModelStreamInferResponse(error_message=redact_paths(error.message), infer_response=answered)

        window = self.core.settings.grpc_stream_window
        async for response in ordered_window(until_draining(self.core, aiter(request_iterator)), handle, window):
            yield response

    ModelStatistics = _unsupported("ModelStatistics (the Prometheus metrics are at GET /metrics)")
    RepositoryModelLoad = _unsupported("loading models at run time (the server loads its repository at start)")
    RepositoryModelUnload = _unsupported("unloading models at run time")
    SystemSharedMemoryStatus = _unsupported("system shared memory")
    SystemSharedMemoryRegister = _unsupported("system shared memory")
    SystemSharedMemoryUnregister = _unsupported("system shared memory")
    CudaSharedMemoryStatus = _unsupported("CUDA shared memory")
    CudaSharedMemoryRegister = _unsupported("CUDA shared memory")
    CudaSharedMemoryUnregister = _unsupported("CUDA shared memory")
    Trace = _unsupported("tracing settings")
