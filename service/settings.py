"""Server settings: one pydantic-settings object, read from `FILTERS_*` environment variables.

Model-level settings (batch size, queue delay, tile size) live with each model in the model
repository (`engines/*/model.toml`); these are the server-wide ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.repository.config import RuntimeName

DEFAULT_REPOSITORY = Path(__file__).resolve().parent.parent / "engines"


class Limits(BaseModel):
    """Input limits, checked before any expensive work."""

    max_body_bytes: int = Field(64 * 2**20, ge=1024, description="Largest request body accepted (413 beyond).")
    max_input_pixels: int = Field(
        4096 * 4096, ge=1, description="Largest input image, width x height, read from the header (413 beyond)."
    )
    max_output_pixels: int = Field(
        16384 * 16384, ge=1, description="Largest output image, width x height (413 beyond)."
    )


def _default_preference() -> list[RuntimeName]:
    return ["tensorrt", "torch", "onnxruntime"]


class Settings(BaseSettings):
    """Everything the server reads from its environment (prefix `FILTERS_`, nested with `__`)."""

    model_config = SettingsConfigDict(env_prefix="FILTERS_", env_nested_delimiter="__", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    model_repository: Path = Field(DEFAULT_REPOSITORY, description="Folder holding one folder per model.")
    models: list[str] = Field(default_factory=list, description="Models to load; empty loads all of them.")
    runtime_preference: list[RuntimeName] = Field(
        default_factory=_default_preference,
        description="Runtimes to try for each model, best first; unavailable ones are skipped with a log line.",
    )
    default_deadline_s: float = Field(
        60.0, gt=0, le=3600, description="Deadline of a request without an X-Request-Timeout header."
    )
    codec_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=512, description="Threads for image decode/encode."
    )
    cpu_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=512,
        description="CPU threads shared by the execution slots of a CPU runtime.",
    )
    drain_timeout_s: float = Field(
        30.0, ge=0, le=3600, description="After SIGTERM, longest wait for in-flight requests before exiting."
    )
    drain_announce_s: float = Field(
        0.0, ge=0, le=300, description="After SIGTERM, shortest time readiness answers 503 before exiting."
    )
    warmup: bool = Field(True, description="Run each execution slot once before reporting ready.")
    limits: Limits = Limits()
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log verbosity.")
