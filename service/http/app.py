"""The FastAPI application: thin routers over the shared `ServingCore`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from service.core import ServingCore
from service.http import routes_health, routes_models, routes_superres
from service.http.errors import install_error_handlers
from service.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """Build the app. The model repository is read here, so a bad config stops start-up at once;
    models load in the background and /readyz turns 200 when they are warm."""
    core = ServingCore(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.get_running_loop().create_task(core.start())
        try:
            yield
        finally:
            core.state.draining = True
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            await core.stop()

    app = FastAPI(
        title="Filters service",
        version="0.1.0",
        summary="Super-resolution and other image/video filters on ONNX Runtime, PyTorch-CUDA and TensorRT.",
        lifespan=lifespan,
    )
    app.state.core = core
    install_error_handlers(app)
    for module in (routes_superres, routes_models, routes_health):
        app.include_router(module.router)
    return app
