"""SRVGGNetCompact: Real-ESRGAN's compact VGG-style network, also the base of our bundled models.

Works in low-resolution space: a plain stack of 3x3 convolutions and activations whose last
convolution makes `out_ch * upscale**2` channels, a pixel shuffle to the output size, and the
input upsampled by nearest neighbour added as a residual. Parameter names match
`realesrgan/archs/srvgg_arch.py` (`body.N.weight`), so upstream checkpoints load with
`strict=True`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

ActType = Literal["prelu", "relu", "leakyrelu"]


def _activation(act_type: ActType, num_feat: int) -> nn.Module:
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    if act_type == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)
    raise ValueError(f"act_type must be prelu, relu or leakyrelu, not {act_type!r}")


class SRVGGNetCompact(nn.Module):
    """Compact super-resolution network: (num_conv + 2) 3x3 convolutions at input resolution.

    The receptive-field radius is `num_conv + 2` input pixels.
    """

    base_index: torch.Tensor

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: ActType = "prelu",
    ) -> None:
        super().__init__()
        self.num_in_ch, self.num_out_ch, self.upscale = num_in_ch, num_out_ch, upscale
        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)
        # Nearest upsampling of the input, done before the shuffle: output channel c*s*s + k of
        # the last conv lands on the same pixel as input channel c, so adding input channel c to
        # those s*s channels and shuffling equals upstream's `shuffle(body) + nearest(x)`. Not
        # persistent: it is not a parameter of upstream checkpoints.
        base = torch.arange(num_out_ch).remainder(num_in_ch).repeat_interleave(upscale * upscale)
        self.register_buffer("base_index", base, persistent=False)

    @property
    def receptive_radius(self) -> int:
        """Pixels of input context each output pixel depends on, per side."""
        return sum(1 for m in self.body if isinstance(m, nn.Conv2d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, in_ch, H, W) to (N, out_ch, H*upscale, W*upscale)."""
        out = x
        for layer in self.body:
            out = layer(out)
        out = out + x.index_select(1, self.base_index)
        return self.upsampler(out)
