"""The fuzz tests' server: small limits, so whatever gets through is cheap to run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import LiveServer, start_server

LIMITS = {"FILTERS_LIMITS__MAX_INPUT_PIXELS": str(256 * 256), "FILTERS_LIMITS__MAX_BODY_BYTES": str(256 * 1024)}


@pytest.fixture(scope="package")
def target(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with small limits, so whatever decodes is cheap to run."""
    live = start_server(tiny_repository, tmp_path_factory.mktemp("fuzz-logs") / "server.log", env=LIMITS)
    yield live
    live.stop()


@pytest.fixture(scope="package")
def client(target: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.url, timeout=60) as session:
        yield session
