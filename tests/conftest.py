"""Shared fixtures: a tiny model repository and a live server on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.live_server import LiveServer, start_server
from tests.support.tiny_models import write_sr_entry

# CI runs on 2 shared cores: no per-example deadline, a bounded number of examples.
settings.register_profile("ci", deadline=None, max_examples=60)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def tiny_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny SR models (x2, x4) built by the tests."""
    root = tmp_path_factory.mktemp("repository")
    write_sr_entry(root, "tiny-x2", 2, default=True)
    write_sr_entry(root, "tiny-x4", 4, seed=1)
    return root


@pytest.fixture(scope="session")
def server(tiny_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real server on a loopback port, serving the tiny repository."""
    live = start_server(tiny_repository, tmp_path_factory.mktemp("logs") / "server.log")
    yield live
    live.stop()
