"""The quality table: one row per model and set, bicubic beside it, published figures cited."""

from __future__ import annotations

from engines.tooling.evaluate import Score, render_markdown


def test_table_rows_baselines_and_citations() -> None:
    scores = [
        Score("Set5", 2, "bicubic", 33.666, 5),
        Score("Set5", 2, "sr-x2", 37.321, 5),
        Score("Urban100_subset", 4, "bicubic", 23.55, 5),
        Score("Urban100_subset", 4, "sr-x4", 25.871, 5),
    ]
    text = render_markdown(scores, "python -m engines eval --models engines/sr-x2")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows == [
        "| Set5 (5) | x2 | sr-x2 | **37.32** | 33.67 | 37.00 | 36.64 |",
        "| Urban100_subset (5) | x4 | sr-x4 | **25.87** | 23.55 | — | — |",
    ]
    assert "[1] FSRCNN: Dong" in text and "[2] ESPCN x3, x4: Shi" in text
    assert "Reproduce: `python -m engines eval --models engines/sr-x2`" in text
