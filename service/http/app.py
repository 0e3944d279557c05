"""The FastAPI application: thin routers over the shared `ServingCore`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from service.core import ServingCore
from service.grpc.server import GrpcServer
from service.http import (
    routes_detect,
    routes_frames,
    routes_health,
    routes_interpolate,
    routes_jobs,
    routes_models,
    routes_style,
    routes_superres,
)
from service.http.errors import install_error_handlers
from service.inference_protocol import http_routes as routes_inference_protocol
from service.jobs.store import JobStore
from service.security.http_middleware import install_http_security
from service.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """Build the app. The model repository is read here, so a bad config stops start-up at once;
    models load in the background and /readyz turns 200 when they are warm."""
    core = ServingCore(settings)
    jobs = JobStore(core)  # asynchronous video jobs; cancelled and deleted at shutdown

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        grpc_server = GrpcServer(core, settings)  # beside HTTP, same loop; a taken port stops start-up
        await grpc_server.start()
        loading = asyncio.get_running_loop().create_task(core.start())
        try:
            yield
        finally:
            core.state.draining = True
            await grpc_server.stop(settings.drain_timeout_s)  # in-flight calls finish, new ones are refused
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            await jobs.close()
            await core.stop()

    app = FastAPI(
        title="Filters service",
        version="0.1.0",
        summary="Super-resolution and other image/video filters on ONNX Runtime, PyTorch-CUDA and TensorRT.",
        lifespan=lifespan,
    )
    app.state.core = core
    app.state.jobs = jobs
    install_error_handlers(app)
    install_http_security(app, settings.auth, settings.rate_limit)
    routers = (routes_superres, routes_frames, routes_jobs, routes_models, routes_health, routes_inference_protocol)
    routers_filters = (routes_detect, routes_style, routes_interpolate)
    for module in (*routers, *routers_filters):
        app.include_router(module.router)
    return app
