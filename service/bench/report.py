"""Benchmark results as JSON and as a Markdown table."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from service.bench.loadgen import RunResult


def machine_description() -> str:
    """CPU model, cores and OS, for the table's header."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def markdown_table(results: Sequence[RunResult]) -> str:
    lines = [
        "| target | concurrency | requests | errors | req/s | p50 ms | p90 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.concurrency} | {r.requests} | {r.errors} | {r.throughput_per_s:.2f} | "
            f"{r.p50_ms:.1f} | {r.p90_ms:.1f} | {r.p99_ms:.1f} |"
        )
    return "\n".join(lines)


def write_report(out: Path, name: str, header: dict[str, str], results: Sequence[RunResult]) -> tuple[Path, Path]:
    """Write `<out>/<name>.json` and `<out>/<name>.md`."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}.json"
    json_path.write_text(json.dumps({"header": header, "results": [r.as_dict() for r in results]}, indent=2))
    facts = [f"- {key}: {value}" for key, value in header.items()]
    md_lines = [f"# {name}", "", *facts, "", markdown_table(results)]
    md_path = out / f"{name}.md"
    md_path.write_text("\n".join(md_lines) + "\n")
    return json_path, md_path
