"""Random aligned LR/HR patch pairs, drawn on the training device in one gather per batch.

Every HR image is cropped to a multiple of the scale and downscaled once with the MATLAB-exact
bicubic (rounded to uint8 like benchmark LR files), so training inputs look like test inputs.
All images sit in two zero-padded uint8 tensors; a batch is one advanced-indexing gather,
then a random flip/transpose per sample (the 8 symmetries of the square).
"""

from __future__ import annotations

import numpy as np
import torch

from engines.tooling.images import mod_crop
from engines.tooling.imresize import imresize_torch


class PatchSampler:
    """Draws (lr, hr) float32 NCHW batches in [0, 1]; lr is `lr_patch` square, hr `scale` times it."""

    def __init__(self, images: list[np.ndarray], scale: int, lr_patch: int, device: torch.device) -> None:
        self.scale, self.lr_patch, self.device = scale, lr_patch, device
        hr_patch = lr_patch * scale
        kept = [mod_crop(im, scale) for im in images if min(im.shape[:2]) >= hr_patch]
        if not kept:
            raise ValueError(f"no training image is at least {hr_patch}x{hr_patch}")
        self.skipped = len(images) - len(kept)
        sizes = torch.tensor([im.shape[:2] for im in kept], dtype=torch.int64)
        self.lr_sizes = (sizes // scale).to(device)
        h_max, w_max = (int(v) for v in sizes.max(dim=0).values)
        self.hr = torch.zeros(len(kept), h_max, w_max, 3, dtype=torch.uint8, device=device)
        self.lr = torch.zeros(len(kept), h_max // scale, w_max // scale, 3, dtype=torch.uint8, device=device)
        for i, image in enumerate(kept):
            hr = torch.from_numpy(image).to(device)
            lr = imresize_torch(hr.permute(2, 0, 1)[None].double(), 1 / scale, round_between_passes=True)
            self.hr[i, : hr.shape[0], : hr.shape[1]] = hr
            self.lr[i, : lr.shape[2], : lr.shape[3]] = lr[0].permute(1, 2, 0).to(torch.uint8)
        positions = (self.lr_sizes - lr_patch + 1).prod(dim=1).double()
        self.weights = positions / positions.sum()  # every LR patch position equally likely
        self.offsets = torch.arange(lr_patch, device=device)

    def __len__(self) -> int:
        return self.hr.shape[0]

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch of aligned patches, each randomly flipped/transposed."""
        dev, p, s = self.device, self.lr_patch, self.scale
        index = torch.multinomial(self.weights, batch, replacement=True, generator=generator)
        room = (self.lr_sizes[index] - p + 1).double()
        corner = (torch.rand(batch, 2, device=dev, generator=generator, dtype=torch.float64) * room).long()
        lr = self._gather(self.lr, index, corner, self.offsets)
        hr_offsets = torch.arange(p * s, device=dev)
        hr = self._gather(self.hr, index, corner * s, hr_offsets)
        flips = torch.rand(batch, 3, device=dev, generator=generator) < 0.5
        return _dihedral(lr, flips), _dihedral(hr, flips)

    @staticmethod
    def _gather(images: torch.Tensor, index: torch.Tensor, corner: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        rows = (corner[:, 0, None] + offsets)[:, :, None]
        cols = (corner[:, 1, None] + offsets)[:, None, :]
        patches = images[index[:, None, None], rows, cols]  # (B, P, P, 3)
        return patches.permute(0, 3, 1, 2).float().div_(255.0)


def _dihedral(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Apply per-sample horizontal flip, vertical flip and transpose where `flips` says so."""
    x = torch.where(flips[:, 0, None, None, None], x.flip(-1), x)
    x = torch.where(flips[:, 1, None, None, None], x.flip(-2), x)
    return torch.where(flips[:, 2, None, None, None], x.transpose(-1, -2), x)
