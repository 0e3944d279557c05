"""Architectures: upstream parameter names, upstream forward semantics, receptive field."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from engines.archs import RRDBNet, SRVGGNetCompact, build
from engines.archs.rrdbnet import pixel_unshuffle


def test_srvgg_parameter_names_are_realesrgans() -> None:
    model = SRVGGNetCompact(3, 3, num_feat=8, num_conv=2, upscale=4, act_type="prelu")
    expected = {f"body.{i}.weight" for i in range(7)} | {f"body.{i}.bias" for i in (0, 2, 4, 6)}
    assert set(model.state_dict()) == expected  # the residual index buffer is not saved
    assert model.state_dict()["body.6.weight"].shape == (3 * 16, 8, 3, 3)


@pytest.mark.parametrize("act_type", ["prelu", "relu", "leakyrelu"])
@pytest.mark.parametrize("upscale", [2, 3, 4])
def test_srvgg_forward_equals_upstream_formula(act_type: str, upscale: int) -> None:
    torch.manual_seed(0)
    model = SRVGGNetCompact(3, 3, 8, 2, upscale, act_type).eval()  # type: ignore[arg-type]
    x = torch.rand(2, 3, 9, 11)
    with torch.no_grad():
        out = x
        for layer in model.body:
            out = layer(out)
        upstream = F.pixel_shuffle(out, upscale) + F.interpolate(x, scale_factor=upscale, mode="nearest")
        assert torch.allclose(model(x), upstream, atol=1e-6)


def test_srvgg_receptive_radius_is_the_number_of_convolutions() -> None:
    torch.manual_seed(0)
    model = SRVGGNetCompact(3, 3, 4, 3, 2, "prelu").eval()
    radius = model.receptive_radius
    assert radius == 5
    x = torch.rand(1, 3, 31, 31)
    bumped = x.clone()
    bumped[0, :, 15, 15] += 0.5
    with torch.no_grad():
        changed = (model(bumped) - model(x)).abs().amax(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    # Output pixels 2*(15 - r) .. 2*(15 + r) + 1 may change, none outside.
    assert rows.min() == 2 * (15 - radius) and rows.max() == 2 * (15 + radius) + 1
    assert cols.min() == 2 * (15 - radius) and cols.max() == 2 * (15 + radius) + 1


def test_rrdbnet_parameter_names_are_basicsrs() -> None:
    keys = set(RRDBNet(3, 3, scale=4, num_feat=8, num_block=2, num_grow_ch=4).state_dict())
    for name in ("conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"):
        assert {f"{name}.weight", f"{name}.bias"} <= keys
    for block in (0, 1):
        for rdb in (1, 2, 3):
            for conv in range(1, 6):
                assert f"body.{block}.rdb{rdb}.conv{conv}.weight" in keys
    assert len(keys) == 12 + 2 * 3 * 5 * 2


@pytest.mark.parametrize(("scale", "in_channels"), [(4, 3), (2, 12), (1, 48)])
def test_rrdbnet_unshuffles_small_scales_like_upstream(scale: int, in_channels: int) -> None:
    model = RRDBNet(3, 3, scale=scale, num_feat=8, num_block=1, num_grow_ch=4).eval()
    assert model.conv_first.in_channels == in_channels
    with torch.no_grad():
        assert model(torch.rand(1, 3, 8, 12)).shape == (1, 3, 8 * scale, 12 * scale)


def test_pixel_unshuffle_matches_torch() -> None:
    x = torch.rand(2, 3, 8, 12)
    assert torch.equal(pixel_unshuffle(x, 2), F.pixel_unshuffle(x, 2))
    assert torch.equal(pixel_unshuffle(x, 4), F.pixel_unshuffle(x, 4))


def test_build_by_name() -> None:
    assert isinstance(build("srvgg", num_feat=4, num_conv=1, upscale=2), SRVGGNetCompact)
    with pytest.raises(ValueError, match="unknown architecture"):
        build("edsr")
