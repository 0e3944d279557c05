"""A live server with the bundled classical interpolator and tiny RIFE-style ONNX models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interpolate.models import copy_bundled_dis, write_rife_like
from tests.support.live_server import LiveServer, start_server


@pytest.fixture(scope="session")
def interpolate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("interpolate-repository")
    copy_bundled_dis(root)
    write_rife_like(root, "rife-scalar", "scalar")
    write_rife_like(root, "rife-map", "map")
    write_rife_like(root, "rife-middle", None)
    live = start_server(root, tmp_path_factory.mktemp("interpolate-logs") / "server.log")
    yield live
    live.stop()
