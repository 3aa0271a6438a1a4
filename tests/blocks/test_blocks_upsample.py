"""Upsamplers and initialisation helpers."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from upsample.blocks import (
    PixelShuffleUp,
    ResizeConv,
    UpConv,
    bilinear_init_,
    bilinear_kernel,
    dcgan_init_,
    icnr_,
    make_upsampler,
)


def test_bilinear_kernel_matches_fcn_formula() -> None:
    k4 = bilinear_kernel(1, 1, 4)[0, 0]
    row = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(k4, row[:, None] * row[None, :])
    k3 = bilinear_kernel(1, 1, 3)[0, 0]
    row3 = torch.tensor([0.5, 1.0, 0.5])
    torch.testing.assert_close(k3, row3[:, None] * row3[None, :])


def test_bilinear_kernel_channel_placement() -> None:
    same = bilinear_kernel(3, 3, 4)
    assert same.shape == (3, 3, 4, 4)
    off_diagonal = same.sum(dim=(2, 3)) * (1 - torch.eye(3))
    assert off_diagonal.abs().max() == 0
    more_out = bilinear_kernel(2, 5, 4).sum(dim=(2, 3)) > 0
    assert more_out.tolist() == [[1, 0, 1, 0, 1], [0, 1, 0, 1, 0]]
    fewer_out = bilinear_kernel(4, 2, 4).sum(dim=(2, 3)) > 0
    assert fewer_out.tolist() == [[1, 0], [0, 1], [0, 0], [0, 0]]


@pytest.mark.parametrize("scale", [1, 2, 3, 4, 8])
def test_upconv_bilinear_equals_interpolate_away_from_border(scale: int) -> None:
    x = torch.randn(2, 3, 7, 10, dtype=torch.float64)
    up = UpConv(3, 3, scale).double()
    with torch.no_grad():
        out = up(x)
    ref = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    assert out.shape == (2, 3, 7 * scale, 10 * scale)
    # The outer scale // 2 rows and columns differ: interpolation clamps source coordinates
    # below 0 / above H - 1 (replicates the edge) while the transposed conv sees zeros there.
    b = scale // 2
    inner = (..., slice(b, out.shape[-2] - b), slice(b, out.shape[-1] - b))
    torch.testing.assert_close(out[inner], ref[inner])
    if b:
        assert not torch.allclose(out[..., 0, :], ref[..., 0, :])


def test_upconv_learnable_and_frozen() -> None:
    assert UpConv(2, 2, 2).conv.weight.requires_grad
    frozen = UpConv(2, 2, 2, learnable=False)
    assert not any(p.requires_grad for p in frozen.parameters())
    with pytest.raises(ValueError, match="bilinear_init"):
        UpConv(2, 2, 2, bilinear_init=False, learnable=False)
    random = UpConv(2, 3, 2, bilinear_init=False)
    assert not torch.equal(random.conv.weight, bilinear_kernel(2, 3, 4))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pixel_shuffle_icnr_starts_as_nearest_neighbour(scale: int) -> None:
    torch.manual_seed(0)
    up = PixelShuffleUp(3, 4, scale)
    x = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        out = up(x)
    assert out.shape == (2, 4, 5 * scale, 7 * scale)
    blocks = out.view(2, 4, 5, scale, 7, scale)
    torch.testing.assert_close(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))
    # ... and equals nearest upsampling of the conv with the shared sub-kernel.
    sub = up.conv.weight[:: scale * scale]
    expected = F.interpolate(F.conv2d(x, sub, padding=1), scale_factor=scale, mode="nearest")
    torch.testing.assert_close(out, expected)


def test_icnr_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        icnr_(torch.empty(6, 2, 3, 3), 2)


@pytest.mark.parametrize("kind", ["transposed", "resize_conv", "pixel_shuffle"])
@pytest.mark.parametrize("scale", [1, 2, 3])
def test_make_upsampler_shapes(kind: str, scale: int) -> None:
    up = make_upsampler(kind, 3, 5, scale)
    out = up(torch.randn(2, 3, 9, 13))
    assert out.shape == (2, 5, 9 * scale, 13 * scale)
    out.sum().backward()
    for p in up.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_make_upsampler_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="pixel_shuffle"):
        make_upsampler("deconv", 1, 1, 2)


def test_resize_conv_bilinear_mode() -> None:
    up = ResizeConv(2, 2, 2, mode="bilinear")
    assert up(torch.randn(1, 2, 5, 6)).shape == (1, 2, 10, 12)


def test_bilinear_init_sets_transposed_conv() -> None:
    conv = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=True)
    bilinear_init_(conv)
    torch.testing.assert_close(conv.weight.data, bilinear_kernel(2, 2, 4))
    assert conv.bias.abs().max() == 0
    with pytest.raises(ValueError, match="square"):
        bilinear_init_(nn.ConvTranspose2d(2, 2, (3, 4)))


def test_dcgan_init_statistics() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.ConvTranspose2d(64, 128, 4), nn.BatchNorm2d(4096), nn.Conv2d(128, 64, 4), nn.Linear(8, 8)
    )
    dcgan_init_(net)
    for layer in (net[0], net[2]):
        assert abs(layer.weight.mean().item()) < 2e-3
        assert abs(layer.weight.std().item() - 0.02) < 1e-3
        assert layer.bias.abs().max() == 0
    assert abs(net[1].weight.mean().item() - 1) < 2e-3
    assert abs(net[1].weight.std().item() - 0.02) < 2e-3
    assert net[1].bias.abs().max() == 0


def test_dcgan_init_keeps_icnr_and_frozen_weights() -> None:
    net = nn.Sequential(PixelShuffleUp(4, 2, 2), UpConv(2, 2, 2, learnable=False))
    dcgan_init_(net)
    weight = net[0].conv.weight
    assert abs(weight.std().item() - 0.02) < 0.01
    torch.testing.assert_close(weight, weight[::4].repeat_interleave(4, dim=0))
    torch.testing.assert_close(net[1].conv.weight, bilinear_kernel(2, 2, 4))
