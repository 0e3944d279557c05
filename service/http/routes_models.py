"""`GET /v1/models`: what this server serves and on which runtime."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from service.core import ServingCore

router = APIRouter(tags=["models"])


class ModelInfo(BaseModel):
    """One loaded model."""

    name: str
    task: str
    description: str
    scale: int
    runtime: str
    slots: list[str]
    skipped_runtimes: dict[str, str]
    tile_size: int
    tile_overlap: int
    max_batch_size: int
    max_queue_delay_ms: float
    ready: bool


class ModelList(BaseModel):
    """Every model of the repository this server loaded."""

    models: list[ModelInfo]


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    """Models, their task, scale, runtime (and why better runtimes were skipped), tiling and batching."""
    core: ServingCore = request.app.state.core
    infos = []
    for served in core.models.values():
        config = served.config
        infos.append(
            ModelInfo(
                name=config.name,
                task=config.task,
                description=config.description,
                scale=config.scale,
                runtime=served.runtime.name,
                slots=served.scheduler.pool.descriptions,
                skipped_runtimes=served.skipped_runtimes,
                tile_size=config.tiling.tile_size,
                tile_overlap=config.tiling.overlap,
                max_batch_size=config.batching.max_batch_size,
                max_queue_delay_ms=config.batching.max_queue_delay_ms,
                ready=served.scheduler.pool.healthy,
            )
        )
    return ModelList(models=infos)
