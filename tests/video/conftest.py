"""Video fixtures: a model repository made for video (one tile per frame, a cheap net) and servers.

`video_server` has the default limits. `strict_server` has small video limits and few jobs with
a short TTL. Both inject faults: a frame of one magic colour makes its batch fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_server import LiveServer, start_server
from tests.support.tiny_models import write_sr_entry

FRAMES_IN_FLIGHT = 6
STRICT_LIMITS = {
    "FILTERS_VIDEO__MAX_UPLOAD_BYTES": str(3_500_000),  # big_buck_bunny.mp4 is 3.9 MB, the others less
    "FILTERS_VIDEO__MAX_PIXELS": str(320_000),  # car-detection.mp4 is 768x432 = 331776
    "FILTERS_VIDEO__MAX_DURATION_S": "2",  # asl_again.mkv is 2.6 s
    "FILTERS_VIDEO__MAX_FRAMES": "45",
    "FILTERS_VIDEO__MAX_BATCH_FRAMES": "3",
}


@pytest.fixture(scope="session")
def video_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """x2 SR with tiles larger than the clips' frames (a frame is one item) and 2 features (cheap)."""
    root = tmp_path_factory.mktemp("video-repository")
    write_sr_entry(root, "vid-x2", 2, default=True, tile_size=800, overlap=4, features=2, max_batch_size=4)
    return root


def _env(spool: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        "FILTERS_VIDEO__SPOOL_DIR": str(spool),
        "FILTERS_VIDEO__FRAMES_IN_FLIGHT": str(FRAMES_IN_FLIGHT),
        "FILTERS_FAULT_INJECTION": "1",  # only frames of one magic colour fail (tests/video/test_video_errors.py)
        **extra,
    }


@pytest.fixture(scope="session")
def video_spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="session")
def video_server(
    video_repository: Path, video_spool: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    logs = tmp_path_factory.mktemp("video-logs") / "server.log"
    live = start_server(video_repository, logs, _env(video_spool, {}))
    yield live
    live.stop()


@pytest.fixture(scope="session")
def strict_server(video_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    spool = tmp_path_factory.mktemp("strict-spool")
    logs = tmp_path_factory.mktemp("strict-logs") / "server.log"
    extra = {
        **STRICT_LIMITS,
        "FILTERS_JOBS__MAX_JOBS": "2",
        "FILTERS_JOBS__MAX_RUNNING": "1",
        "FILTERS_JOBS__TTL_S": "5",
    }
    live = start_server(video_repository, logs, _env(spool, extra))
    yield live
    live.stop()
