"""How long a model's queued work will take, and the admission decision it drives.

`ServiceTimeEstimate` learns how fast the model's execution slots get through work items, from
the batches they run; `deadline_refusal` uses it at admission to refuse at once a request that
the work already queued or running ahead of it would keep past its deadline (shedding by
deadline), instead of letting it wait until it is answered 504. Pure: no clocks, no event loop;
driven with numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RISE = 0.5  # weight of a batch slower than the average: slowdowns are believed at once
FALL = 0.1  # weight of a faster one: speed-ups only gradually (wrongly admitted costs a 504)
MIN_BATCHES = 3  # batches measured before the estimate is used (before that: cold, admit as before)
# The expected work must fit in this share of a request's time left. Under overload the queue
# fills up to what the estimate allows, so the last request admitted is always on the edge;
# the rest absorbs what the estimate cannot foresee (a slow batch while the CPU is taken by
# other work, decoding and encoding, sending the answer).
HEADROOM = 0.8
RETRY_AFTER_MIN_S = 1.0
RETRY_AFTER_MAX_S = 60.0


class ServiceTimeEstimate:
    """Seconds a slot spends per work item and per batch, averaged over the batches it ran.

    What a batch costs is its slot time: while the model is backlogged (items kept waiting
    since the previous batch finished), the time between the two batches' ends times the
    number of slots, which includes what compute time alone misses (the gaps between batches
    when the server is busy with other work, a CPU shared with codecs and clients); otherwise its
    compute time. Averages are exponentially weighted, rising fast and falling slowly (`RISE`,
    `FALL`).

    Batches are reported whole (`record_batch`), or item by item as their futures are answered
    (`record_item`, then `close_batch`): the items of one batch share their start and finish
    times, so consecutive items with the same times are one batch. `idle` says the model has
    nothing left to run once the batch being recorded is folded.
    """

    def __init__(self, slots: int = 1, min_batches: int = MIN_BATCHES) -> None:
        self.slots = max(1, slots)
        self._min_batches = min_batches
        self._per_item: float | None = None
        self._per_batch: float | None = None
        self._batches = 0
        self._open: tuple[float, float] | None = None
        self._open_items = 0
        self._last_finished: float | None = None  # end of the latest batch, while backlogged since
        self._idle_after_open = False

    @property
    def batches(self) -> int:
        """Batches folded into the averages so far."""
        return self._batches

    @property
    def batch_open(self) -> bool:
        """Whether items of a batch are being recorded (`close_batch` has not folded it yet)."""
        return self._open is not None

    @property
    def per_item_s(self) -> float | None:
        """Slot seconds per item; None until `min_batches` batches were measured."""
        return self._per_item if self._batches >= self._min_batches else None

    @property
    def per_batch_s(self) -> float | None:
        """Slot seconds per batch (of recent batches' sizes); None while cold."""
        return self._per_batch if self._batches >= self._min_batches else None

    def record_batch(self, size: int, seconds: float) -> None:
        """Fold one batch of `size` items that took `seconds` of slot time into the averages."""
        if size <= 0 or not math.isfinite(seconds) or seconds < 0:
            return
        self._per_item = _smooth(self._per_item, seconds / size)
        self._per_batch = _smooth(self._per_batch, seconds)
        self._batches += 1

    def record_item(self, started_at: float, finished_at: float) -> None:
        """One finished item of the batch that ran from `started_at` to `finished_at`."""
        key = (started_at, finished_at)
        if key == self._open:
            self._open_items += 1
            return
        self.close_batch()
        self._open, self._open_items = key, 1

    def close_batch(self) -> None:
        """Fold the batch whose items were being recorded (nothing if none is open)."""
        if self._open is None:
            return
        started_at, finished_at = self._open
        seconds = finished_at - started_at
        if self._last_finished is not None and finished_at > self._last_finished:
            seconds = (finished_at - self._last_finished) * self.slots
        self.record_batch(self._open_items, seconds)
        self._last_finished = None if self._idle_after_open else finished_at
        self._open, self._open_items, self._idle_after_open = None, 0, False

    def idle(self) -> None:
        """Nothing is queued or running: the next batch's slot time is its compute time."""
        if self._open is None:
            self._last_finished = None
        else:
            self._idle_after_open = True

    def expected_wait_s(self, items_ahead: int) -> float | None:
        """Seconds until `items_ahead` items, queued or running, are done; None while cold."""
        per_item = self.per_item_s
        if per_item is None:
            return None
        return max(0, items_ahead) * per_item / self.slots

    def own_work_s(self, items: int) -> float | None:
        """Seconds a request's own `items` take once they start: they share the slots, and an item
        is done only when its whole batch is (under load a full one), so at least a batch's time;
        None while cold."""
        per_item, per_batch = self.per_item_s, self.per_batch_s
        if per_item is None or per_batch is None:
            return None
        return max(per_batch, math.ceil(max(1, items) / self.slots) * per_item)


def _smooth(average: float | None, sample: float) -> float:
    if average is None:
        return sample
    return average + (RISE if sample > average else FALL) * (sample - average)


@dataclass(frozen=True)
class DeadlineRefusal:
    """Why a request cannot be done before its deadline: the estimated work ahead and its own."""

    wait_s: float  # work queued or running ahead of the request
    own_s: float  # the request's own work
    time_left_s: float  # until the request's deadline

    @property
    def retry_after_s(self) -> float:
        """When the work ahead should have shrunk enough for a request with this deadline
        (bounded to RETRY_AFTER_MIN_S..RETRY_AFTER_MAX_S)."""
        short_by = self.wait_s + self.own_s - HEADROOM * self.time_left_s
        return min(RETRY_AFTER_MAX_S, max(RETRY_AFTER_MIN_S, math.ceil(short_by)))

    def message(self, model_name: str) -> str:
        """What the client reads: how much work is queued, its deadline, and what to do."""
        return (
            f"model '{model_name}' has about {_seconds(self.wait_s)} s of work queued, so this request would "
            f"not finish within its {_seconds(self.time_left_s)} s deadline; retry in about "
            f"{self.retry_after_s:.0f} s, or with a longer deadline (X-Request-Timeout header, gRPC deadline)"
        )


def deadline_refusal(
    estimate: ServiceTimeEstimate, items_ahead: int, own_items: int, time_left_s: float
) -> DeadlineRefusal | None:
    """A refusal when `items_ahead` plus the request's `own_items` are expected to take longer
    than `HEADROOM` of `time_left_s`; None to admit (always while the estimate is cold)."""
    wait_s = estimate.expected_wait_s(items_ahead)
    own_s = estimate.own_work_s(own_items)
    if wait_s is None or own_s is None or wait_s + own_s <= HEADROOM * time_left_s:
        return None
    return DeadlineRefusal(wait_s, own_s, time_left_s)


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"
