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
from service.security.settings import AuthSettings, RateLimitSettings, TlsSettings

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


class VideoSettings(BaseModel):
    """Video uploads: where they are spooled, their limits, and the frame pipeline (docs/video.md)."""

    max_upload_bytes: int = Field(
        4 * 2**30, ge=1024, description="Largest video upload, streamed to the spool folder (413 beyond)."
    )
    max_duration_s: float = Field(4 * 3600.0, gt=0, description="Longest video accepted, in seconds (413 beyond).")
    max_frames: int = Field(1_000_000, ge=1, description="Most video frames accepted in one video (413 beyond).")
    max_pixels: int = Field(
        4096 * 2160, ge=1, description="Largest video frame, width x height, before filtering (413 beyond)."
    )
    spool_dir: Path | None = Field(None, description="Folder for uploads and job results; default: the system temp.")
    frames_in_flight: int = Field(
        8, ge=1, le=256, description="Frames of one video between decoder and encoder at once (memory bound)."
    )
    default_deadline_s: float = Field(
        3600.0, gt=0, le=86400, description="Deadline of a streamed video request without X-Request-Timeout."
    )
    hardware_codecs: bool = Field(
        True, description="Use NVDEC decoding and NVENC encoding when the GPU and FFmpeg build have them."
    )
    hardware_decode_min_pixels: int = Field(
        1920 * 1080,
        ge=0,
        description="NVDEC decodes only frames of at least this many pixels; smaller ones decode faster on the CPU.",
    )
    decode_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Decoder threads of one video (0: by frame size, two per megapixel, between 2 and the core count).",
    )
    encoder_segments: int = Field(
        1, ge=1, le=16, description="Encoders run in parallel on consecutive GOPs (1: one encoder; see docs/video.md)."
    )
    encoder_threads: int = Field(
        0, ge=0, le=256, description="Threads of the one software encoder (0: its own choice, 1.5 per core for x264)."
    )
    encoder_process: bool = Field(
        True,
        description=(
            "Run the one software encoder in a child process of its own, fed through shared memory (Linux; "
            "2 x frames_in_flight + 8 frames of it per video; false, or not Linux: in the server's process; "
            "docs/video.md)."
        ),
    )
    decoder_process: bool = Field(
        False,
        description=(
            "Demux, decode and convert to RGB in a child process of its own, handing frames over through "
            "shared memory (Linux; 2 x frames_in_flight + 8 RGB frames of it per video; elsewhere in-process)."
        ),
    )
    encoder_niceness: int = Field(
        5,
        ge=0,
        le=19,
        description="How many nice steps below the rest of the server the encoder's threads run (0: the same).",
    )
    fragment_s: float = Field(
        0.5,
        ge=0,
        le=60,
        description=(
            "Longest fragment of a streamed MP4 answer, in seconds (0: one fragment per GOP, key frame to key frame); "
            "shorter fragments reach the client sooner, the last one too."
        ),
    )
    max_batch_frames: int = Field(64, ge=1, le=4096, description="Most frames in one frame-batch request.")


class JobSettings(BaseModel):
    """Asynchronous video jobs: how many, how long they and their results live."""

    max_jobs: int = Field(16, ge=1, description="Jobs held at once, any state (429 beyond until one expires).")
    max_running: int = Field(2, ge=1, description="Jobs processed at once; the others wait queued.")
    ttl_s: float = Field(3600.0, gt=0, description="How long a finished job and its result are kept.")
    timeout_s: float = Field(6 * 3600.0, gt=0, description="Longest a job may run before it fails.")


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
    engine_cache_dir: Path | None = Field(
        None, description="TensorRT engine cache folder; default: .engines/ in each model's folder."
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
    shed_by_deadline: bool = Field(
        True,
        description="Refuse at once (429) a request whose deadline the work queued ahead of it would outlast.",
    )
    drain_timeout_s: float = Field(
        30.0, ge=0, le=3600, description="After SIGTERM, longest wait for in-flight requests before exiting."
    )
    drain_announce_s: float = Field(
        0.0, ge=0, le=300, description="After SIGTERM, shortest time readiness answers 503 before exiting."
    )
    warmup: bool = Field(True, description="Run each execution slot once before reporting ready.")
    gpu_encode: bool = Field(
        True,
        description="Make JPEG (nvJPEG), PNG row filters and video 4:2:0 frames on the GPU when the model runs there.",
    )
    gpu_decode: bool = Field(
        False, description="Unfilter 8-bit RGB PNG inputs on the GPU (inflate by ISA-L) when the model runs there."
    )
    gpu_wait: Literal["block", "spin"] = Field(
        "block", description="How threads wait for the GPU: sleeping (frees the core) or spinning (CUDA's default)."
    )
    grpc_port: int = Field(8001, ge=0, le=65535, description="gRPC port, same address as HTTP (0 picks a free one).")
    workers: int = Field(
        1, ge=1, le=64, description="Server processes sharing the HTTP and gRPC ports (service/processes.py)."
    )
    grpc_max_message_bytes: int = Field(
        128 * 2**20, ge=2**20, le=2**31 - 1, description="Largest gRPC message received or sent (both ways)."
    )
    grpc_stream_window: int = Field(
        8, ge=1, le=256, description="Most frames of one gRPC stream read ahead of the results its client took."
    )
    limits: Limits = Limits()
    video: VideoSettings = VideoSettings()
    jobs: JobSettings = JobSettings()
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log verbosity.")
    auth: AuthSettings = AuthSettings()
    tls: TlsSettings = TlsSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    fault_injection: bool = Field(
        False, description="Test only: slots fail on magic inputs (docs/reliability.md); never set in production."
    )
