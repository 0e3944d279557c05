"""Sampling profiles of a running server during one benchmark window (py-spy), summarised.

    with sampled(server_pid, out / "profile.txt") as profile:
        ...  # the load
    lines = summary(out / "profile.txt")  # Markdown: where the CPU time went, by thread and function

py-spy (a wheel on PyPI) attaches by pid and writes collapsed stacks (`--format raw`); without
it, or without the right to attach, the run goes on unprofiled and the summary says why.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
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
