"""`python -m service.client`: command-line examples of the HTTP and gRPC APIs.

python -m service.client superres photo.jpg photo_x2.png                   # gRPC (default)
python -m service.client superres photo.jpg photo_x4.png --via http --scale 4
python -m service.client stream-video clip.mp4 clip_x2.mp4 --max-in-flight 8   # frames on one stream
python -m service.client video clip.mp4 clip_x2.mp4                             # the file, in chunks
python -m service.client v2-infer photo.png photo_x2.png --via grpc         # tritonclient
python -m service.client models | health
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import grpc
import numpy as np

from service.client.grpc_client import FiltersClient
from service.client.http_client import HttpClient, HttpError
from service.client.video_frames import FrameWriter, read_frames, video_fps


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service.client", description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:8001", help="gRPC host:port (default %(default)s)")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="HTTP base URL (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline in seconds (default %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("superres", help="upscale one image file")
    one.add_argument("source", type=Path)
    one.add_argument("output", type=Path)
    one.add_argument("--via", choices=["grpc", "http"], default="grpc")
    one.add_argument("--scale", type=int)
    one.add_argument("--model")
    one.add_argument("--format", choices=["png", "jpeg", "webp"], default="png")
    video = commands.add_parser("stream-video", help="send a video's frames on one gRPC stream, write the results")
    video.add_argument("source", type=Path)
    video.add_argument("output", type=Path, help=".mp4 or .avi")
    video.add_argument("--scale", type=int)
    video.add_argument("--model")
    video.add_argument("--max-in-flight", type=int, default=0, help="frames in flight (0: the server's default)")
    video.add_argument("--frames", type=int, help="stop after this many frames")
    file = commands.add_parser("video", help="upload a video file over gRPC, write the filtered file")
    file.add_argument("source", type=Path)
    file.add_argument("output", type=Path)
    file.add_argument("--task", choices=["superres", "style"], default="superres")
    file.add_argument("--scale", type=int)
    file.add_argument("--model")
    file.add_argument("--container", choices=["mp4", "mkv", "webm"], default="mp4")
    file.add_argument("--codec", choices=["h264", "h265", "av1"], default="h264")
    v2 = commands.add_parser("v2-infer", help="one image through the Open Inference Protocol with tritonclient")
    v2.add_argument("source", type=Path)
    v2.add_argument("output", type=Path)
    v2.add_argument("--via", choices=["grpc", "http"], default="grpc")
    v2.add_argument("--model", default="", help="model name (default: the first superres model)")
    commands.add_parser("models", help="list the loaded models (gRPC)")
    commands.add_parser("health", help="gRPC health of the server and its services")
    return parser


def superres(args: argparse.Namespace) -> None:
    data = args.source.read_bytes()
    started = time.perf_counter()
    if args.via == "http":
        with HttpClient(args.url) as http:
            result = http.superres(data, scale=args.scale, model=args.model, format=args.format, timeout_s=args.timeout)
        args.output.write_bytes(result)
    else:
        with FiltersClient(args.target) as client:
            answer = client.superres(
                data, scale=args.scale, model=args.model, format=args.format, timeout_s=args.timeout
            )
        assert isinstance(answer.image, bytes)
        args.output.write_bytes(answer.image)
    print(f"{args.output}: {args.output.stat().st_size} bytes in {time.perf_counter() - started:.2f} s")


def stream_video(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    frames = read_frames(args.source, args.frames)
    with FiltersClient(args.target) as client, FrameWriter(args.output, video_fps(args.source)) as writer:
        results = client.stream_frames(
            frames, scale=args.scale, model=args.model, format="raw", max_in_flight=args.max_in_flight, timeout_s=None
        )
        for result in results:
            assert isinstance(result.image, np.ndarray)
            writer.write(result.image)
    elapsed = time.perf_counter() - started
    print(
        f"{args.output}: {writer.frames} frames in {elapsed:.2f} s ({writer.frames / max(elapsed, 1e-9):.1f} frames/s)"
    )


def v2_infer(args: argparse.Namespace) -> None:
    try:
        if args.via == "http":
            import tritonclient.http as triton
        else:
            import tritonclient.grpc as triton
    except ImportError:
        sys.exit("v2-infer needs tritonclient: pip install 'tritonclient[all]'")
    bgr = cv2.imread(str(args.source), cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit(f"{args.source} is not an image OpenCV reads")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    client = triton.InferenceServerClient(args.url.split("://")[-1] if args.via == "http" else args.target)
    model = args.model or next(m["name"] for m in _index(client) if m.get("state") == "READY")
    tensor = triton.InferInput("IMAGE", list(rgb.shape), "UINT8")
    tensor.set_data_from_numpy(rgb)
    output = client.infer(model, [tensor]).as_numpy("IMAGE")
    cv2.imwrite(str(args.output), cv2.cvtColor(output, cv2.COLOR_RGB2BGR))
    print(f"{args.output}: {output.shape[1]}x{output.shape[0]} from model {model} over {args.via}")


def _index(client: object) -> list[dict[str, str]]:
    index = client.get_model_repository_index()  # type: ignore[attr-defined]
    if isinstance(index, list):
        return index
    return [{"name": m.name, "state": m.state} for m in index.models]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "superres":
            superres(args)
        elif args.command == "stream-video":
            stream_video(args)
        elif args.command == "video":
            with FiltersClient(args.target) as client:
                summary = client.process_video(
                    args.source, args.output, task=args.task, scale=args.scale, model=args.model,
                    container=args.container, codec=args.codec, timeout_s=None,
                )  # fmt: skip
            print(f"{args.output}: {summary.frames} frames, {summary.output_bytes} bytes, model {summary.model}")
        elif args.command == "v2-infer":
            v2_infer(args)
        elif args.command == "models":
            with FiltersClient(args.target) as client:
                for m in client.list_models():
                    print(f"{m.name:24} {m.task:12} x{m.scale:<3} {m.runtime:12} {'ready' if m.ready else 'not ready'}")
        else:
            with FiltersClient(args.target) as client:
                for service in ("", "filters.v1.Filters", "inference.GRPCInferenceService"):
                    print(f"{service or '(server)':32} {client.health(service)}")
    except grpc.RpcError as error:
        print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    except HttpError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
