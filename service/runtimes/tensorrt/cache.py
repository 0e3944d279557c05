"""The engine cache: a TensorRT plan is valid only for what it was built from and for.

The key holds everything that makes a plan valid: the ONNX file's sha256, the TensorRT version,
the GPU's name and compute capability, and the build settings (precision, typing, profiles,
workspace, the uint8 I/O folded into the graph and the rewrite's version). The plan's file name
carries the key's digest (`<model>.<precision>.<digest>.plan`) and a sidecar JSON beside it
carries the whole key; a plan is used only when both agree. Anything else (missing, stale,
another GPU, another TensorRT) is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CACHE_FOLDER = ".engines"


@dataclass(frozen=True)
class EngineKey:
    """What a plan was built from and for."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    strongly_typed: bool
    batch_sizes: tuple[int, ...]
    shapes: tuple[tuple[int, int], ...]
    min_side: int
    workspace_mib: int
    io: str  # the image/tensor I/O specs folded into the graph, as canonical JSON
    wrap_version: int

    def as_json(self) -> dict[str, Any]:
        """The key as plain JSON values (tuples become lists)."""
        loaded: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return loaded

    def digest(self) -> str:
        """16 hex digits of the key's sha256: the plan's file name carries it."""
        text = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def slug(text: str) -> str:
    """A file-name-safe form of `text` (GPU names have spaces)."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


@dataclass(frozen=True)
class EnginePaths:
    """Where the plan of one key, its sidecar and the shared timing cache live."""

    plan: Path
    sidecar: Path
    timing_cache: Path

    @classmethod
    def of(cls, folder: Path, model_name: str, key: EngineKey) -> EnginePaths:
        stem = f"{model_name}.{key.precision}.{key.digest()}"
        timing = f"timing-trt{key.tensorrt_version}-{slug(key.gpu_name)}-sm{key.compute_capability}.cache"
        return cls(folder / f"{stem}.plan", folder / f"{stem}.json", folder / timing)


def read_plan(paths: EnginePaths, key: EngineKey) -> bytes | None:
    """The cached plan for `key`, or None when it is missing or its sidecar names another key."""
    try:
        sidecar = json.loads(paths.sidecar.read_text(encoding="utf-8"))
        if sidecar.get("key") != key.as_json():
            return None
        return paths.plan.read_bytes()
    except (OSError, ValueError):
        return None


def write_plan(paths: EnginePaths, key: EngineKey, plan: bytes) -> None:
    """Store `plan` and its sidecar atomically (the sidecar last: a plan without one is ignored)."""
    paths.plan.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(paths.plan, plan)
    atomic_write(paths.sidecar, json.dumps({"key": key.as_json()}, indent=2, sort_keys=True).encode())


def atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
