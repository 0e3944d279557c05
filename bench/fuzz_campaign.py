"""The bad-input campaign: thousands of hostile inputs per class against the real server (and the
decoders in-process), counted by outcome, with the server's memory before and after each class.

    python bench/fuzz_campaign.py --cases 2000 --seed 1 --out bench/results/fuzz_campaign.md
    python bench/fuzz_campaign.py --cases 200 --atheris-runs 20000     # + coverage-guided decoding

A good outcome is a 2xx or a 4xx in the protocol's error shape with a message (gRPC: a status
naming the client's mistake); a bad one is a 5xx, INTERNAL/UNKNOWN, a trace or a server path in
the answer, a crash, or memory that keeps growing. The generators are those of tests/fuzz (the
CI runs a derandomized sample of each class); here they run longer, from a recorded seed.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.bench.report import machine_description  # noqa: E402
from service.media.images import decode, probe  # noqa: E402
from tests.fuzz.generators import (  # noqa: E402
    headers,
    lie_about_size,
    multipart_body,
    mutated_image,
    png_declaring,
    query_params,
    seed_images,
)
from tests.fuzz.oracle import judge_exception, judge_grpc, judge_http  # noqa: E402
from tests.fuzz.protocols import (  # noqa: E402
    grpc_infer_bytes,
    grpc_superres_bytes,
    mutated_video,
    oip_binary,
    oip_json,
)
from tests.support.live_server import LiveServer, start_server  # noqa: E402
from tests.support.tiny_models import write_sr_entry  # noqa: E402

LIMITS = {
    "FILTERS_LIMITS__MAX_INPUT_PIXELS": str(512 * 512),
    "FILTERS_LIMITS__MAX_BODY_BYTES": str(1024 * 1024),
    "FILTERS_VIDEO__MAX_UPLOAD_BYTES": str(8 * 1024 * 1024),
    "FILTERS_LOG_LEVEL": "warning",
}
Case = Callable[[random.Random], str]  # one case: returns its outcome, raises AssertionError if bad


@dataclass
class ClassResult:
    """Outcomes of one class of inputs."""

    name: str
    cases: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    bad: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    alive_after: bool = True


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def http_judged(response: httpx.Response, empty_ok: bool = False) -> str:
    return judge_http(response.status_code, response.content, response.headers.get("content-type", ""), empty_ok)


def in_process_decode(seeds: dict[str, bytes]) -> Case:
    def case(rng: random.Random) -> str:
        _, data = mutated_image(seeds, rng)
        try:
            header = probe(data, 512 * 512)
            image = decode(data, header)
        except Exception as exc:
            return judge_exception(exc)
        assert image.width * image.height <= 512 * 512, "decoded more pixels than the limit"
        return "decoded"

    return case


def http_cases(server: LiveServer, client: httpx.Client, seeds: dict[str, bytes], clip: bytes) -> dict[str, Case]:
    """The classes sent over HTTP, by name."""

    def raw_image(rng: random.Random) -> str:
        _, data = mutated_image(seeds, rng)
        return http_judged(client.post("/v1/superres", content=data, headers={"content-type": "image/png"}))

    def bombs(rng: random.Random) -> str:
        if rng.random() < 0.5:
            data = png_declaring(rng.randint(1, 2**31 - 1), rng.randint(1, 2**31 - 1), rows=rng.randint(0, 3))
        else:
            data = lie_about_size(seeds[rng.choice(["png", "jpeg", "bmp", "webp"])], rng)
        return http_judged(client.post("/v1/superres", content=data))

    def multipart(rng: random.Random) -> str:
        image = seeds["png"] if rng.random() < 0.5 else mutated_image(seeds, rng)[1]
        content_type, body = multipart_body(image, rng)
        return http_judged(client.post("/v1/superres", content=body, headers={"content-type": content_type}))

    def parameters(rng: random.Random) -> str:
        raw = {k: v.encode() for k, v in headers(rng).items()}
        return http_judged(client.post("/v1/superres", params=query_params(rng), content=seeds["jpeg"], headers=raw))

    def oip(generator: Callable[[random.Random], tuple[dict[str, str], bytes]]) -> Case:
        def case(rng: random.Random) -> str:
            extra, body = generator(rng)
            return http_judged(client.post("/v2/models/tiny-x2/infer", content=body, headers=extra))

        return case

    def video(rng: random.Random) -> str:
        body = mutated_video(clip, rng)
        kind = {"content-type": rng.choice(["video/x-matroska", "video/mp4", "video/webm"])}
        with client.stream("POST", "/v1/superres?preset=ultrafast", content=body, headers=kind) as answer:
            try:
                content = answer.read()
            except httpx.RemoteProtocolError:
                assert answer.status_code == 200, "only a stream already answered 200 may be cut short"
                return "200 (stream cut after an error mid-video)"
        return http_judged(answer) if not content or answer.status_code >= 400 else f"{answer.status_code}"

    return {
        "image bytes (raw body)": raw_image,
        "declared-size bombs": bombs,
        "multipart bodies": multipart,
        "query parameters and headers": parameters,
        "inference protocol JSON": oip(oip_json),
        "inference protocol binary extension": oip(oip_binary),
        "video containers": video,
    }


def grpc_cases(server: LiveServer, channel: grpc.Channel, seeds: dict[str, bytes]) -> dict[str, Case]:
    infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    superres = channel.unary_unary("/filters.v1.Filters/Superres")
    return {
        "gRPC ModelInfer messages": lambda rng: judge_grpc(infer, grpc_infer_bytes(rng)),
        "gRPC Superres messages": lambda rng: judge_grpc(superres, grpc_superres_bytes(rng, seeds)),
    }


def endless_bodies(server: LiveServer, rng: random.Random) -> str:
    """A chunked upload that never ends: cut at the body limit (413, or the connection closed)."""
    sent = 0

    def forever() -> object:
        nonlocal sent
        while sent < 256 * 2**20:
            sent += 65536
            yield rng.randbytes(16) + bytes(65520)

    content_type = rng.choice(["image/png", "video/mp4", "multipart/form-data; boundary=x", "application/json"])
    path = rng.choice(["/v1/superres", "/v2/models/tiny-x2/infer"])
    try:
        answer = httpx.post(server.url + path, content=forever(), headers={"content-type": content_type}, timeout=120)
        outcome = http_judged(answer)
    except httpx.TransportError:
        outcome = "connection closed by the server"
    assert sent < 256 * 2**20, "the server read 256 MiB of an endless body"
    return outcome


def run_class(name: str, case: Case, cases: int, seed: int, server: LiveServer | None) -> ClassResult:
    """`cases` cases of one class from a seeded generator; `server` None: in-process."""
    result = ClassResult(name, rss_before_mb=rss_mb(server.process.pid) if server else 0.0)
    rng = random.Random(f"{seed}:{name}")
    started = time.perf_counter()
    for index in range(cases):
        try:
            result.outcomes[case(rng)] += 1
        except AssertionError as bad:
            result.outcomes["BAD"] += 1
            result.bad.append(f"case {index}: {bad}")
        except (httpx.TransportError, grpc.RpcError) as lost:
            result.outcomes["BAD: transport error"] += 1
            result.bad.append(f"case {index}: {type(lost).__name__}: {lost}")
        result.cases += 1
    result.seconds = time.perf_counter() - started
    if server is not None:
        result.alive_after = server.process.poll() is None and httpx.get(f"{server.url}/healthz").status_code == 200
        result.rss_after_mb = rss_mb(server.process.pid) if result.alive_after else float("nan")
    print(f"{name}: {result.cases} cases, {dict(result.outcomes)}", flush=True)
    return result


def atheris_class(runs: int) -> ClassResult | None:
    """Coverage-guided fuzzing of probe+decode with atheris (libFuzzer), if it is installed."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        return None
    started = time.perf_counter()
    target = ROOT / "bench" / "fuzz_atheris_target.py"
    with tempfile.TemporaryDirectory() as corpus:
        for name, data in seed_images().items():
            (Path(corpus) / name).write_bytes(data)
        run = subprocess.run(  # noqa: S603 (our own script)
            [sys.executable, str(target), f"-runs={runs}", "-max_len=65536", "-rss_limit_mb=2048", corpus],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
    result = ClassResult("image decode, coverage-guided (atheris)", cases=runs, seconds=time.perf_counter() - started)
    crashed = run.returncode != 0
    result.outcomes["BAD: crash or non-4xx exception" if crashed else "4xx or decoded (no finding)"] = runs
    if crashed:
        result.bad.append(run.stderr[-2000:])
    return result


def markdown(results: list[ClassResult], header: dict[str, str]) -> str:
    lines = ["# Bad-input campaign", ""]
    lines += [f"- {key}: {value}" for key, value in header.items()]
    lines += [
        "",
        "| class | cases | outcomes | bad | server RSS MiB before → after | alive after | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(r.outcomes.items(), key=lambda kv: -kv[1]))
        rss = f"{r.rss_before_mb:.0f} → {r.rss_after_mb:.0f}" if r.rss_before_mb else "(in-process)"
        bad = sum(v for k, v in r.outcomes.items() if k.startswith("BAD"))
        lines.append(f"| {r.name} | {r.cases} | {outcomes} | {bad} | {rss} | {r.alive_after} | {r.seconds:.1f} |")
    for r in results:
        for line in r.bad[:5]:
            lines += ["", f"Bad outcome in {r.name}: `{line[:400]}`"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000, help="cases per class")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--endless", type=int, default=20, help="endless-upload cases")
    parser.add_argument("--atheris-runs", type=int, default=0, help="atheris executions (0: skip)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz_campaign.md")
    args = parser.parse_args()
    seeds = seed_images()
    with tempfile.TemporaryDirectory() as scratch:
        results = campaign(args, seeds, Path(scratch))
    if args.atheris_runs and (fuzzed := atheris_class(args.atheris_runs)) is not None:
        results.append(fuzzed)
    header = {
        "command": "python bench/fuzz_campaign.py " + " ".join(sys.argv[1:]),
        "machine": machine_description(),
        "date": dt.date.today().isoformat(),
        "server": "python -m service on tiny-x2/tiny-x4 (tests/support/tiny_models.py), limits "
        + ", ".join(f"{k}={v}" for k, v in LIMITS.items()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(results, header))
    print(f"wrote {args.out}")
    return 1 if any(k.startswith("BAD") for r in results for k in r.outcomes) else 0


def campaign(args: argparse.Namespace, seeds: dict[str, bytes], scratch: Path) -> list[ClassResult]:
    from tests.video.clips import noise_frames, write_clip

    write_sr_entry(scratch / "repository", "tiny-x2", 2, default=True)
    write_sr_entry(scratch / "repository", "tiny-x4", 4, seed=1)
    clip = write_clip(scratch / "clip.mkv", noise_frames(4, 48, 32)).read_bytes()
    server = start_server(scratch / "repository", scratch / "server.log", env=LIMITS)
    results = [run_class("image decode (in-process)", in_process_decode(seeds), args.cases * 5, args.seed, None)]
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client, grpc.insecure_channel(server.grpc_target) as ch:
            classes = {**http_cases(server, client, seeds, clip), **grpc_cases(server, ch, seeds)}
            for name, case in classes.items():
                results.append(run_class(name, case, args.cases, args.seed, server))
        results.append(
            run_class("endless uploads", lambda rng: endless_bodies(server, rng), args.endless, args.seed, server)
        )
    finally:
        server.stop()
        traces = server.log().count("Traceback")
    results[-1].bad += [f"{traces} tracebacks in the server log"] if traces else []
    return results


if __name__ == "__main__":
    sys.exit(main())
