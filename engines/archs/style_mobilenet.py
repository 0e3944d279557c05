"""TransformerMobileNet: a fast neural-style network built from MobileNetV2-style bottlenecks.

The architecture of the `fnst_mobilenetv2_*.pth` style weights (mmalotin/pytorch-fast-neural-
style-mobilenetV2), re-implemented from its description so that those state dicts load with
`strict=True` (attribute names follow the checkpoint keys). RGB float32 NCHW in 0-255 out 0-255
(unclamped); two stride-2 stages, so sides should be multiples of 4. Every normalisation is an
affine InstanceNorm, whose statistics span the whole input: tiles do not reproduce the whole-image
result exactly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812


class Bottleneck(nn.Module):
    """1x1 conv -> depthwise 3x3 (reflection padded, stride 1 or 2) -> 1x1 conv, InstanceNorm after
    each, ReLU6 after the first two; an identity shortcut when the shape is kept."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, expansion: int = 1) -> None:
        super().__init__()
        hidden = in_ch * expansion
        self.pad = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(in_ch, hidden, 1, bias=False)
        self.in1 = nn.InstanceNorm2d(hidden, affine=True)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride, groups=hidden, bias=False)
        self.in2 = nn.InstanceNorm2d(hidden, affine=True)
        self.conv3 = nn.Conv2d(hidden, out_ch, 1, bias=False)
        self.in3 = nn.InstanceNorm2d(out_ch, affine=True)
        self.shortcut = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.in1(self.conv1(x)))
        y = F.relu6(self.in2(self.conv2(self.pad(y))))
        y = self.in3(self.conv3(y))
        return x + y if self.shortcut else y


class UpsampleBottleneck(nn.Module):
    """Nearest x2 upsampling, a bottleneck, ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = Bottleneck(in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv1(F.interpolate(x, scale_factor=2.0, mode="nearest")))


class TransformerMobileNet(nn.Module):
    """9x9 conv, two stride-2 bottlenecks, five residual bottlenecks, two upsampling bottlenecks,
    9x9 conv back to RGB (about 0.24 M parameters, no biases)."""

    def __init__(self) -> None:
        super().__init__()
        self.pad9 = nn.ReflectionPad2d(4)
        self.conv1 = nn.Conv2d(3, 32, 9, bias=False)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = Bottleneck(32, 64, stride=2)
        self.conv3 = Bottleneck(64, 128, stride=2)
        self.res1 = Bottleneck(128, 128)
        self.res2 = Bottleneck(128, 128)
        self.res3 = Bottleneck(128, 128)
        self.res4 = Bottleneck(128, 128)
        self.res5 = Bottleneck(128, 128)
        self.upconv1 = UpsampleBottleneck(128, 64)
        self.upconv2 = UpsampleBottleneck(64, 32)
        self.conv4 = nn.Conv2d(32, 3, 9, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.in1(self.conv1(self.pad9(x))))
        for stage in (self.conv2, self.conv3, self.res1, self.res2, self.res3, self.res4, self.res5):
            y = stage(y)
        y = self.upconv2(self.upconv1(y))
        return self.conv4(self.pad9(y))
