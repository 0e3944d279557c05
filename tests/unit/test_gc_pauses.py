"""The collector's pauses are timed by generation, into totals and the Prometheus histogram."""

from __future__ import annotations

import gc

from service import gc_pauses


def _samples(generation: str) -> float:
    for family in gc_pauses.GC_PAUSE.collect():
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels == {"generation": generation}:
                return sample.value
    return 0.0


def test_collections_are_counted_and_timed_by_generation() -> None:
    gc_pauses.install()
    gc_pauses.install()  # once is enough: a second hook would count every collection twice
    before, observed = gc_pauses.totals(), _samples("2")
    gc.collect(2)
    gc.collect(0)
    spent = gc_pauses.totals().since(before)
    assert spent.counts[2] == 1 and spent.counts[0] >= 1
    assert spent.seconds[2] > 0 and all(s >= 0 for s in spent.seconds)
    assert _samples("2") == observed + 1
    assert "gen2: 1 in" in str(spent)
