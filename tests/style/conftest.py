"""Style models exported by our tooling from the third-party MobileNetV2 fast-style weights, and a
live server on them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.data import shared
from tests.support.live_server import REPO_ROOT, LiveServer, start_server

TILE = 512  # images up to 512 per side run whole; larger ones in tiles


@pytest.fixture(scope="session")
def style_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """candy through the command line (checked against PyTorch on a photo), mosaic through the API."""
    pytest.importorskip("torch")
    from engines.tooling.style_export import export_style

    root = tmp_path_factory.mktemp("style-repository")
    command = [
        sys.executable, "-m", "engines.tooling.style_export",
        "--weights", str(shared("models/style/fnst_mobilenetv2_candy.pth")),
        "--out-dir", str(root / "style-candy"), "--name", "style-candy", "--style", "candy",
        "--tile-size", str(TILE), "--check-image", str(shared("sr/Set5/butterfly.png")),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (root / "export-log.txt").write_text(done.stdout)
    export_style(
        shared("models/style/fnst_mobilenetv2_mosaic.pth"),
        root / "style-mosaic",
        "style-mosaic",
        "mosaic",
        tile_size=TILE,
    )
    return root


@pytest.fixture(scope="session")
def style_server(style_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(style_repository, tmp_path_factory.mktemp("style-logs") / "server.log")
    yield live
    live.stop()
