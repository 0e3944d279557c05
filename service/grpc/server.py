"""The grpc.aio server beside the HTTP server, in the same process and event loop.

It serves `filters.v1.Filters`, the Open Inference Protocol (`inference.GRPCInferenceService`),
standard health checking (`grpc.health.v1`) and server reflection. Health follows the core's
readiness: NOT_SERVING while models load, while a slot restarts and from the first SIGTERM on.
`stop` is the drain: new calls are refused, calls in flight get `grace` seconds to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from service.core import ServingCore
from service.errors import ConfigError
from service.grpc.errors import ErrorMappingInterceptor
from service.grpc.filters_servicer import FiltersServicer
from service.grpc.generated.filters.v1 import filters_pb2, filters_pb2_grpc
from service.inference_protocol.grpc_servicer import InferenceServicer
from service.inference_protocol.stubs import model_config_pb2
from service.inference_protocol.stubs import service_pb2 as grpc_service_pb2
from service.inference_protocol.stubs import service_pb2_grpc as grpc_service_pb2_grpc
from service.security.grpc_interceptor import grpc_interceptors
from service.security.tls import grpc_server_credentials
from service.settings import Settings

log = logging.getLogger(__name__)
HEALTH_POLL_S = 0.1
FILTERS_SERVICE = filters_pb2.DESCRIPTOR.services_by_name["Filters"].full_name
INFERENCE_SERVICE = grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
HEALTH_SERVICES = ("", FILTERS_SERVICE, INFERENCE_SERVICE)


class GrpcServer:
    """One grpc.aio server over `core`; `start` binds and serves, `stop` drains."""

    def __init__(self, core: ServingCore, settings: Settings) -> None:
        self.core = core
        self.settings = settings
        self.port = 0
        self._health = health.aio.HealthServicer()
        self._server = self._build()
        self._watch: asyncio.Task[None] | None = None

    def _build(self) -> grpc.aio.Server:
        settings = self.settings
        limit = settings.grpc_max_message_bytes
        server = grpc.aio.server(
            interceptors=[*grpc_interceptors(settings.auth, settings.rate_limit), ErrorMappingInterceptor(limit)],
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                # a port in use is an error, not a silently shared port; except between the worker
                # processes of one server (FILTERS_WORKERS > 1, service/processes.py)
                ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
            ],
        )
        filters_pb2_grpc.add_FiltersServicer_to_server(FiltersServicer(self.core), server)  # type: ignore[no-untyped-call]
        grpc_service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(self.core), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = (FILTERS_SERVICE, INFERENCE_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server, pool=_reflection_pool())
        return server

    async def start(self) -> None:
        """Bind `host:grpc_port` (TLS when configured) and start serving; health starts NOT_SERVING."""
        host = self.settings.host
        address = f"[{host}]:{self.settings.grpc_port}" if ":" in host else f"{host}:{self.settings.grpc_port}"
        credentials = grpc_server_credentials(self.settings.tls)
        try:
            if credentials is None:
                self.port = self._server.add_insecure_port(address)
            else:
                self.port = self._server.add_secure_port(address, credentials)
        except RuntimeError as exc:
            raise ConfigError(f"cannot listen for gRPC on {address} ({exc}); set FILTERS_GRPC_PORT") from None
        if self.port == 0:
            raise ConfigError(f"cannot listen for gRPC on {address}; is the port in use? set FILTERS_GRPC_PORT")
        for service in HEALTH_SERVICES:
            await self._health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self._server.start()
        self._watch = asyncio.get_running_loop().create_task(self._follow_readiness())
        log.info("gRPC listening on %s:%d", host, self.port)

    async def _follow_readiness(self) -> None:
        serving: bool | None = None
        while True:
            ready = self.core.ready
            if ready != serving:
                status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
                for service in HEALTH_SERVICES:
                    await self._health.set(service, status)
                serving = ready
            await asyncio.sleep(HEALTH_POLL_S)

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, give the calls in flight `grace_s` seconds, then cancel the rest."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace_s)


def _reflection_pool() -> descriptor_pool.DescriptorPool:
    """One pool with every served file, for reflection."""
    pool = descriptor_pool.DescriptorPool()
    for module in (filters_pb2, model_config_pb2, grpc_service_pb2, health_pb2, reflection_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    return pool
