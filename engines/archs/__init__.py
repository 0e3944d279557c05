"""Network architectures of the model repository, with upstream-compatible parameter names."""

from __future__ import annotations

from typing import Any

from torch import nn

from engines.archs.rrdbnet import RRDBNet
from engines.archs.srvgg import SRVGGNetCompact

ARCHS: dict[str, type[nn.Module]] = {"srvgg": SRVGGNetCompact, "rrdbnet": RRDBNet}

__all__ = ["ARCHS", "RRDBNet", "SRVGGNetCompact", "build"]


def build(arch: str, **kwargs: Any) -> nn.Module:
    """Instantiate the architecture called `arch` ('srvgg' or 'rrdbnet') with `kwargs`."""
    try:
        return ARCHS[arch](**kwargs)
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHS)}") from None
