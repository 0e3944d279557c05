"""A small blocking client of the HTTP API (`POST /v1/superres`, `GET /v1/models`), on httpx."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx


class HttpError(Exception):
    """The server answered an error: its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class HttpClient:
    """One connection pool to a filters server's HTTP API."""

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, timeout_s: float = 120.0) -> None:
        self.http = httpx.Client(base_url=url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def superres(
        self,
        data: bytes,
        *,
        scale: int | None = None,
        model: str | None = None,
        format: str = "png",
        quality: int | None = None,
        timeout_s: float | None = None,
    ) -> bytes:
        """Upscale one encoded image; returns the encoded result."""
        params: dict[str, Any] = {"format": format}
        params.update({k: v for k, v in {"scale": scale, "model": model, "quality": quality}.items() if v is not None})
        headers = {"X-Request-Timeout": str(timeout_s)} if timeout_s else {}
        response = self.http.post("/v1/superres", params=params, content=data, headers=headers)
        _raise_for_error(response)
        return response.content

    def models(self) -> list[dict[str, Any]]:
        response = self.http.get("/v1/models")
        _raise_for_error(response)
        models: list[dict[str, Any]] = response.json()["models"]
        return models


def _raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        raise HttpError(response.status_code, error["code"], error["message"])
    except (ValueError, KeyError, TypeError):
        raise HttpError(response.status_code, "http_error", response.text[:200]) from None
