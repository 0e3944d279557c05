"""JPEG on the GPU: nvJPEG called directly (4:2:0 and 4:4:4) against torchvision's encode_jpeg.

    python bench/nvjpeg_check.py IMAGES_DIR [--threads 1,4] [--count 200]

Each 960x540 PNG in IMAGES_DIR is enlarged x4 (bicubic) to a 3840x2160 frame on the GPU, the size
of a superres answer. For each encoder: the JPEG's size and PSNR against the frame (decoded with
OpenCV), and encodes per second from N threads at once (each thread its own frames; torchvision's
encoder behind the service's lock, as the service calls it). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.media import nvjpeg  # noqa: E402

Encoder = Callable[[torch.Tensor], bytes]
_lock = threading.Lock()


def torchvision_444(rgb: torch.Tensor) -> bytes:
    from torchvision.io import encode_jpeg

    chw = rgb.permute(2, 0, 1).contiguous()
    torch.cuda.current_stream().synchronize()
    with _lock:
        encoded = encode_jpeg(chw, quality=90)
        assert isinstance(encoded, torch.Tensor)
        return encoded.cpu().numpy().tobytes()


ENCODERS: dict[str, Encoder] = {
    "nvjpeg direct 4:2:0": lambda rgb: nvjpeg.encode(rgb, 90, "420"),
    "nvjpeg direct 4:4:4": lambda rgb: nvjpeg.encode(rgb, 90, "444"),
    "torchvision 4:4:4 (locked)": torchvision_444,
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def rate(encoder: Encoder, frames: list[torch.Tensor], threads: int, count: int) -> float:
    def work(offset: int) -> None:
        for i in range(count // threads):
            encoder(frames[(offset + i) % len(frames)])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))  # warm: states, streams
        started = time.perf_counter()
        list(pool.map(work, range(threads)))
    return (count // threads) * threads / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("--threads", default="1,4")
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    result: dict[str, object] = {"load": nvjpeg.load(), "library": nvjpeg.library_path()}
    hosts = []
    for path in sorted(args.images.glob("*.png"))[:8]:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        hosts.append(cv2.cvtColor(cv2.resize(bgr, (3840, 2160), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB))
    frames = [torch.from_numpy(h).cuda() for h in hosts]
    rows = []
    for name, encoder in ENCODERS.items():
        row: dict[str, object] = {"encoder": name}
        try:
            jpegs = [encoder(f) for f in frames]
        except Exception as exc:  # report, go on with the others
            rows.append({**row, "error": f"{type(exc).__name__}: {exc}"})
            continue
        decoded = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1] for j in jpegs]
        row["mean_bytes"] = int(np.mean([len(j) for j in jpegs]))
        row["mean_psnr_db"] = round(float(np.mean([psnr(d, h) for d, h in zip(decoded, hosts, strict=True)])), 2)
        for threads in (int(t) for t in args.threads.split(",")):
            row[f"per_s_{threads}_threads"] = round(rate(encoder, frames, threads, args.count), 1)
        rows.append(row)
        print(row, flush=True)
    result["rows"] = rows
    host = [cv2.imencode(".jpg", cv2.cvtColor(h, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])[1] for h in hosts]
    result["opencv_420_mean_bytes"] = int(np.mean([len(b) for b in host]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
