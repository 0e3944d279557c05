"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.core import ServingCore
from service.security.redact import redact_paths

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers (`process`: its id, one of several with FILTERS_WORKERS > 1).
    Cheap; never touches a model."""
    return {"status": "alive", "process": str(os.getpid())}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 once every model is loaded and warmed up and no slot is restarting; else 503."""
    core: ServingCore = request.app.state.core
    if core.ready:
        return JSONResponse({"status": "ready", "models": sorted(core.models)})
    if core.state.draining:
        reason = "draining"
    elif core.state.load_error:
        reason = f"model loading failed: {core.state.load_error}"
    elif not core.state.loaded:
        reason = "loading models"
    else:
        reason = "restarting a broken execution slot"
    return JSONResponse({"status": "unready", "reason": redact_paths(reason)}, status_code=503)


@router.get("/metrics")
async def prometheus_metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
