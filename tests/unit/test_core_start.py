"""After loading, the models' objects are frozen out of the cyclic GC: its full passes over a compiled
model's ~500,000 objects held the GIL ~200 ms each and stalled the event loop under load."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from service.core import ServingCore
from service.settings import Settings
from tests.support.tiny_models import write_sr_entry


def test_start_freezes_what_was_loaded(tmp_path: Path) -> None:
    write_sr_entry(tmp_path / "repository", "tiny", 2)
    core = ServingCore(Settings(model_repository=tmp_path / "repository", runtime_preference=["onnxruntime"]))
    gc.unfreeze()

    async def run() -> int:
        await core.start()
        try:
            assert core.ready
            return gc.get_freeze_count()
        finally:
            await core.stop()

    try:
        frozen = asyncio.run(run())
    finally:
        gc.unfreeze()
    assert frozen > 1000
