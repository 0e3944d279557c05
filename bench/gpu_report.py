"""Markdown tables of bench/gpu_bench.py's results (also readable while a run is still going)."""

from __future__ import annotations

from typing import Any

FRAME_PIXELS = 540 * 960


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _shape(shape: Any) -> str:
    return f"{shape[1]}x{shape[0]}"


def _engine(rows: list[dict[str, Any]]) -> list[str]:
    """One line per (mode, shape, batch); frames/s for each slot count; the best as 960x540-equivalent."""
    counts = sorted({r["slots"] for r in rows if "slots" in r})
    table: dict[tuple[str, str, int], dict[int, dict[str, Any]]] = {}
    notes = []
    for r in rows:
        if "slots" in r:
            table.setdefault((r["mode"], _shape(r["shape"]), r["batch"]), {})[r["slots"]] = r
        elif "skipped" in r:
            notes.append(f"- {_shape(r['shape'])}: skipped ({r['skipped']})")
        elif "psnr_db" in r:
            notes.append(f"- {_shape(r['shape'])}: {r['what']}: PSNR {r['psnr_db']} dB")
    out = []
    for (mode, shape, batch), by_slots in table.items():
        best = max(v["frames_per_s"] for v in by_slots.values())
        width, height = (int(x) for x in shape.split("x"))
        prepare = next(iter(by_slots.values()))["prepare_s"]
        errors = sorted({e for v in by_slots.values() for e in v["errors"]})
        cells = [by_slots[c]["frames_per_s"] if c in by_slots else None for c in counts]
        equivalent = round(best * width * height / FRAME_PIXELS, 1)
        out.append([mode, shape, batch, *cells, equivalent, prepare, "; ".join(errors)])
    header = ["mode", "input", "batch", *[f"{c} slot{'s' * (c > 1)} (frames/s)" for c in counts],
              "best, in 960x540 frames/s", "prepare s (all slots)", "errors"]
    return _table(header, out) + notes + ([""] if notes else [])


def _service(rows: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    runs = [r for r in rows if "images_per_s" in r]
    for r in rows:
        if r.get("what") == "server":
            out.append(f"Server: runtime `{r['runtime']}`, slots {r['slots']}, ready in {r['ready_s']} s, "
                       f"skipped runtimes {r['skipped_runtimes']}")
            out.append("")
    stages = sorted({s for r in runs for s in r["stages_ms"]})
    header = ["concurrency", "images/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "late", "statuses", "GPU busy",
              "server CPU cores", *[f"{s} ms" for s in stages]]
    body = [[r["concurrency"], r["images_per_s"], r["p50_ms"], r["p90_ms"], r["p99_ms"], r.get("max_ms"), r.get("late"),
             r["codes"], r["gpu_busy"], r["server_cpu_cores"], *[r["stages_ms"].get(s) for s in stages]] for r in runs]
    out += _table(header, body)
    skipped = [r for r in rows if "concurrency" in r and "skipped" in r]
    out += [f"- concurrency {r['concurrency']}: skipped ({r['skipped']})" for r in skipped]
    return out


def markdown(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    lines = ["# GPU benchmark", ""]
    lines += [f"- {k}: `{v}`" for k, v in meta.items()] + [""]
    for name, section in results.get("sections", {}).items():
        lines += [f"## {name} ({section.get('seconds', '…')} s)", ""]
        if "error" in section:
            lines += [f"**failed**: `{section['error']}`", ""]
        rows = section.get("rows", [])
        if name == "fidelity":
            lines += _table(["comparison", "PSNR dB", "max abs", "differing"], [
                [r["what"], r["psnr_db"], r.get("max_abs"), r.get("differing_fraction")] for r in rows])
        elif name in ("engine", "compiled", "graphs"):
            lines += _engine(rows)
        elif name == "service":
            lines += _service(rows)
    return "\n".join(lines)
