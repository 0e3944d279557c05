"""The benchmark tool's own logic: percentiles, the closed loop, the report; and one real run."""

from __future__ import annotations

import asyncio
from pathlib import Path

from service.bench.__main__ import main
from service.bench.loadgen import closed_loop, percentile
from tests.support.data import png_bytes
from tests.support.live_server import LiveServer


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0 and percentile(values, 0.99) == 99.0 and percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.9) == 7.0


def test_closed_loop_counts_successes_and_errors() -> None:
    async def send(index: int) -> bool:
        await asyncio.sleep(0.001)
        if index % 5 == 4:
            raise RuntimeError("a failed request counts as an error")
        return True

    result = asyncio.run(closed_loop("fake", send, 4, 0.3))
    assert result.requests > 0 and result.errors > 0
    assert abs(result.errors * 4 - result.requests) <= 8  # one in five fails
    assert result.p50_ms <= result.p90_ms <= result.p99_ms


def test_bench_against_the_live_server_writes_json_and_markdown(server: LiveServer, tmp_path: Path) -> None:
    import numpy as np

    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(png_bytes(np.full((40, 50, 3), 90, np.uint8)))
    code = main(["--url", server.url, "--images", str(images), "--concurrency", "1", "2", "--duration", "1",
                 "--warmup", "0", "--format", "jpeg", "--out", str(tmp_path / "out"), "--name", "smoke"])
    assert code == 0
    table = (tmp_path / "out" / "smoke.md").read_text()
    assert "| http jpeg | 1 |" in table and "| http jpeg | 2 |" in table
    assert (tmp_path / "out" / "smoke.json").exists()
