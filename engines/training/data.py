"""Training images: read from a folder tree, or packed into lossless WebP shards to travel.

A pack is a folder of `train-NNN.tar` shards (each a set of `<set>__<name>.webp` files, WebP
lossless: pixel-identical to the source, about two thirds of the PNG size) and a
`manifest.json` with the SHA-256 of every image's decoded pixels, which `load_images` checks.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import cv2
import numpy as np

from engines.tooling.images import list_images, read_rgb

MANIFEST = "manifest.json"
_WEBP_LOSSLESS = [cv2.IMWRITE_WEBP_QUALITY, 101]


def pixel_digest(image: np.ndarray) -> str:
    """SHA-256 of an image's shape and pixels."""
    return hashlib.sha256(repr(image.shape).encode() + image.tobytes()).hexdigest()


def find_images(root: Path) -> list[Path]:
    """Images in `root` and its direct subfolders (e.g. `sr_train/{T91,General100,BSDS200}`)."""
    folders = [root] + sorted(p for p in root.iterdir() if p.is_dir())
    return [path for folder in folders for path in list_images(folder)]


def _encode_lossless(image: np.ndarray, path: Path) -> bytes:
    ok, encoded = cv2.imencode(".webp", image[..., ::-1], _WEBP_LOSSLESS)
    if not ok or not np.array_equal(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1], image):
        raise RuntimeError(f"{path}: WebP lossless round trip failed")
    return encoded.tobytes()


def pack_images(sources: list[Path], out_dir: Path, shard_bytes: int = 16 << 20) -> dict[str, str]:
    """Pack `sources` into WebP-lossless tar shards under `out_dir`; return {member: digest}."""
    manifest: dict[str, str] = {}
    shards: list[list[tuple[str, bytes]]] = [[]]
    size = 0
    for path in sources:
        image = read_rgb(path)
        encoded = _encode_lossless(image, path)
        if shards[-1] and size + len(encoded) > shard_bytes:
            shards.append([])
            size = 0
        member = f"{path.parent.name}__{path.stem}.webp"
        shards[-1].append((member, encoded))
        size += len(encoded)
        manifest[member] = pixel_digest(image)
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, members in enumerate(shards):
        with tarfile.open(out_dir / f"train-{index:03d}.tar", "w") as shard:
            for member, data in members:
                info = tarfile.TarInfo(member)
                info.size = len(data)
                shard.addfile(info, io.BytesIO(data))
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    return manifest


def _unpack(pack: Path) -> dict[str, np.ndarray]:
    manifest = json.loads((pack / MANIFEST).read_text(encoding="utf-8"))
    images: dict[str, np.ndarray] = {}
    for shard_path in sorted(pack.glob("train-*.tar")):
        with tarfile.open(shard_path) as shard:
            for member in shard.getmembers():
                data = np.frombuffer(shard.extractfile(member).read(), np.uint8)  # type: ignore[union-attr]
                images[member.name] = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
    if set(images) != set(manifest):
        raise RuntimeError(f"{pack}: shards hold {len(images)} images, the manifest lists {len(manifest)}")
    for name, image in images.items():
        if pixel_digest(image) != manifest[name]:
            raise RuntimeError(f"{pack}: {name} does not match its manifest digest")
    return images


def load_images(data: Path) -> list[np.ndarray]:
    """uint8 RGB training images from a pack (has `manifest.json`) or a folder tree, name order."""
    if (data / MANIFEST).is_file():
        images = _unpack(data)
        return [images[name] for name in sorted(images)]
    paths = find_images(data)
    if not paths:
        raise FileNotFoundError(f"no training images in {data} or its subfolders")
    return [read_rgb(p) for p in sorted(paths, key=lambda p: f"{p.parent.name}__{p.stem}.webp")]
