"""Reads the model repository: one folder per model, each with a `model.toml`."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from service.errors import ConfigError
from service.repository.config import LoadedConfig, ModelConfig

CONFIG_FILE = "model.toml"


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(file)"
        parts.append(f"field '{field}': {item['msg']}")
    return "; ".join(parts)


def load_model_config(path: Path) -> LoadedConfig:
    """Parse and validate one `model.toml`; errors name the file and the field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        config = ModelConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from exc
    folder = path.parent
    for runtime in ("onnx", "tensorrt", "torch"):
        relative = getattr(config.files, runtime)
        if runtime == "tensorrt" and relative:
            continue  # a plan may be built at start from the ONNX file
        if relative and not (folder / relative).is_file():
            raise ConfigError(f"{path}: field 'files.{runtime}': file '{relative}' does not exist in {folder}")
    labels = config.detect.labels_file if config.detect else None
    if labels and not (folder / labels).is_file():
        raise ConfigError(f"{path}: field 'detect.labels_file': file '{labels}' does not exist in {folder}")
    return LoadedConfig(config=config, folder=folder)


def scan_repository(root: Path, only: list[str] | None = None) -> list[LoadedConfig]:
    """All models under `root` (sorted by name), or the ones named in `only`."""
    if not root.is_dir():
        raise ConfigError(f"model repository {root} is not a folder")
    configs = [load_model_config(p) for p in sorted(root.glob(f"*/{CONFIG_FILE}"))]
    names = [c.config.name for c in configs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"model repository {root}: model names used twice: {sorted(duplicates)}")
    if only:
        missing = set(only) - set(names)
        if missing:
            raise ConfigError(f"model repository {root} has no model named {sorted(missing)}; it has {names}")
        configs = [c for c in configs if c.config.name in only]
    if not configs:
        raise ConfigError(f"model repository {root} holds no '*/{CONFIG_FILE}'")
    return configs
