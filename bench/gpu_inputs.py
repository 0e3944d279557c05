"""Make the GPU benchmark's inputs: 960x540 PNG frames (scaled to cover, centre-cropped) from photos.

    python bench/gpu_inputs.py ../shared/data/images/zidane.jpg ../shared/data/images/bus.jpg \
        ../shared/data/sr/Urban100_subset/img_001.png ../shared/data/sr/Urban100_subset/img_005.png \
        --out .device/inputs

The device machine cannot read ../shared, so the frames (and the weights) travel in an ignored
folder of the checkout (`.device/`, named in the run's `carry`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2


def frame(path: Path, width: int = 960, height: int = 540) -> cv2.typing.MatLike:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read {path}")
    factor = max(width / image.shape[1], height / image.shape[0])
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=interpolation)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top : top + height, left : left + width]


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("images", type=Path, nargs="+")
    cli.add_argument("--out", type=Path, required=True)
    args = cli.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(args.images):
        cv2.imwrite(str(args.out / f"frame{index}.png"), frame(path), [cv2.IMWRITE_PNG_COMPRESSION, 6])


if __name__ == "__main__":
    main()
