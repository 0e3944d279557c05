"""A live server with real third-party detectors (copied to a temporary repository) and a tiny
synthetic YOLO-style model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.detect.models import write_rfb640, write_rfb640_raw, write_tiny_yolo, write_yolox_nano
from tests.support.live_server import LiveServer, start_server


@pytest.fixture(scope="session")
def detect_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("detect-repository")
    write_rfb640(root)
    write_rfb640_raw(root)
    write_yolox_nano(root)
    write_tiny_yolo(root)
    return root


@pytest.fixture(scope="session")
def detect_server(detect_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(detect_repository, tmp_path_factory.mktemp("detect-logs") / "server.log")
    yield live
    live.stop()
