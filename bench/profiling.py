"""Sampling profiles of a running server during one benchmark window (py-spy), summarised.

    with sampled(server_pid, out / "profile.txt") as profile:
        ...  # the load
    lines = summary(out / "profile.txt")  # Markdown: where the CPU time went, by thread and function

py-spy (a wheel on PyPI) attaches by pid and writes collapsed stacks (`--format raw`); without
it, or without the right to attach, the run goes on unprofiled and the summary says why.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

RATE = 97  # samples per second and thread


@contextlib.contextmanager
def sampled(pid: int, path: Path, rate: int = RATE, gil: bool = False) -> Iterator[None]:
    """Sample `pid` and its children (every thread, on-CPU only; native frames off) while the block runs; the
    window's length goes to `<path>.seconds` (for `summary`'s cores per thread). With `gil`, only the
    thread holding the GIL is sampled: the summary's "cores" are then the share of time each held it."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [binary, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--threads",
               "--nolineno", "--nonblocking", "--subprocesses", "--output", str(path)]  # fmt: skip
    command += ["--gil"] if gil else []
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        path.with_suffix(".error").write_text(f"py-spy did not start: {exc}")
        yield
        return
    started = time.monotonic()
    try:
        yield
    finally:
        path.with_suffix(".seconds").write_text(f"{time.monotonic() - started:.3f}")
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if process.returncode not in (0, -signal.SIGINT) or not path.exists():
            path.with_suffix(".error").write_text(output.decode(errors="replace")[-2000:])


def summary(path: Path, top: int = 25, what: str = "on-CPU") -> list[str]:
    """Markdown lines: samples per thread, and the functions with the most samples, on top of the
    stack (self) and anywhere in it (inclusive)."""
    if not path.exists():
        error = path.with_suffix(".error")
        return [f"no profile: {error.read_text()[-500:] if error.exists() else 'py-spy wrote nothing'}"]
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = next((f for f in frames if f.startswith("thread")), "thread ?")
        calls = [f for f in frames if not f.startswith(("process", "thread"))]
        total += count
        threads[thread] += count
        if calls:
            own[calls[-1]] += count
        for frame in set(calls):
            inclusive[frame] += count
    if total == 0:
        return ["no samples"]
    window = path.with_suffix(".seconds")
    seconds = float(window.read_text()) if window.exists() else 0.0

    def table(title: str, counts: Counter[str]) -> list[str]:
        rows = [
            f"| {n / total:.1%} | {n / (RATE * seconds) if seconds else float('nan'):.2f} | `{name[:150]}` |"
            for name, n in counts.most_common(top)
        ]
        head = ["| share | CPU cores | where |", "|---|---|---|"]
        return ["", f"{title} ({total} {what} samples in {seconds:.1f} s):", "", *head, *rows]

    return [*table("Threads", threads), *table("Self (top of stack)", own), *table("Inclusive", inclusive)]


def _thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """Every thread of `pid`: its name (comm) and CPU ticks so far (utime + stime)."""
    found: dict[int, tuple[str, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the thread ended meanwhile
        found[int(task.name)] = (comm, int(stat[11]) + int(stat[12]))
    return found


def _python_threads(pid: int) -> dict[int, str]:
    """OS thread id -> 'name: top frame' for the threads that run Python, from one `py-spy dump`."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    try:
        text = subprocess.run([binary, "dump", "--pid", str(pid), "--nonblocking"], capture_output=True,
                              text=True, timeout=30).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return {}
    threads: dict[int, str] = {}
    current: int | None = None
    for line in text.splitlines():
        match = re.match(r'Thread (\d+) \([^)]*\): "([^"]*)"', line)
        if match:
            current = int(match[1])
            threads[current] = match[2]
        elif current is not None and line.startswith("    ") and ":" not in threads[current]:
            threads[current] += ": " + line.strip()
    return threads


class ThreadWindow:
    """CPU per thread of `pid` over a window of `length_s` that opens `delay_s` after construction
    (in the steady part of a run), each thread named by py-spy where it runs Python (else by its
    OS name: x264, FFmpeg, CUDA and torch threads have no Python frames); Linux only."""

    def __init__(self, pid: int, delay_s: float, length_s: float) -> None:
        self.rows: list[str] = []
        self._pid, self._delay_s, self._length_s = pid, delay_s, length_s
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._cancel.wait(self._delay_s):
            return
        try:
            before = _thread_ticks(self._pid)
            started = time.monotonic()
            if self._cancel.wait(self._length_s):
                return
            after = _thread_ticks(self._pid)
            seconds = time.monotonic() - started
        except OSError:
            return
        names = _python_threads(self._pid)
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        cores = {
            tid: (after[tid][1] - before.get(tid, (comm, 0))[1]) / ticks_per_s / seconds
            for tid, (comm, _) in after.items()
        }
        self.rows = [f"{len(after)} threads; busy cores over {seconds:.1f} s:", "",
                     "| thread | Python thread: top frame (or OS name: count) | cores |", "|---|---|---|"]  # fmt: skip
        python = sorted((t for t in cores if t in names), key=cores.__getitem__, reverse=True)
        for tid in python:
            if cores[tid] >= 0.01:
                self.rows.append(f"| {tid} | `{names[tid][:140]}` | {cores[tid]:.2f} |")
        native: dict[str, list[float]] = {}
        for tid in cores:
            if tid not in names:
                native.setdefault(after[tid][0], []).append(cores[tid])
        for comm, values in sorted(native.items(), key=lambda item: -sum(item[1])):
            if sum(values) >= 0.01:
                self.rows.append(f"| native | `{comm}`: {len(values)} threads, busiest {max(values):.2f} | "
                                 f"{sum(values):.2f} |")  # fmt: skip
        python_total = sum(cores[t] for t in python)
        native_total = sum(sum(values) for values in native.values())
        self.rows += ["", f"Python threads {python_total:.2f} cores, other threads {native_total:.2f}."]

    def finish(self) -> list[str]:
        """The table (empty if the run ended before the window closed)."""
        self._cancel.set()
        self._thread.join(60)
        return self.rows
