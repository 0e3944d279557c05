"""Settings of authentication, TLS and rate limiting (nested in `service.settings.Settings`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

DEFAULT_OPEN_PATHS = ["/healthz", "/readyz", "/metrics", "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"]


class AuthSettings(BaseModel):
    """Optional API-key / bearer-token authentication of HTTP and gRPC calls.

    Off unless `api_keys` or `api_keys_file` names at least one key source.
    """

    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Accepted keys, comma-separated or a JSON list; empty: no keys from env."
    )
    api_keys_file: Path | None = Field(
        None, description="File with one accepted key per line (a mounted secret); re-read when it changes."
    )
    open_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_OPEN_PATHS),
        description="HTTP paths and gRPC methods answered without a key (comma-separated or JSON list).",
    )

    @field_validator("api_keys", "open_paths", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        """Environment values: a JSON list, or comma-separated words."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys) or self.api_keys_file is not None


class TlsSettings(BaseModel):
    """TLS for the HTTP and gRPC servers: both files, or neither (plain text)."""

    cert_file: Path | None = Field(None, description="PEM certificate chain; with key_file, HTTP and gRPC serve TLS.")
    key_file: Path | None = Field(None, description="PEM private key of cert_file.")

    @model_validator(mode="after")
    def _both_or_neither(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("set both tls.cert_file and tls.key_file, or neither")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class RateLimitSettings(BaseModel):
    """Optional per-client request rate limit: a token bucket per API key, else per client address."""

    requests_per_s: float = Field(0.0, ge=0, description="Sustained requests per second per client; 0 turns it off.")
    burst: int = Field(20, ge=1, le=100_000, description="Requests a client may send at once above the sustained rate.")
    max_clients: int = Field(
        10_000, ge=1, le=10_000_000, description="Clients tracked at once; the least recently seen is forgotten first."
    )

    @property
    def enabled(self) -> bool:
        return self.requests_per_s > 0
