"""SPADE, the SPADE residual block and the SPADE generator against independent references: with a
constant label map SPADE is a batch (or instance) norm whose affine is computed by hand from the
convolution weights; different classes modulate their own pixels; the generator gives an image
of the label map's size for any size and upsampler, and its noise makes the image vary."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from upsample.blocks.spade import SPADE, SPADEResBlock
from upsample.blocks.spade_generator import SPADEGenerator
from upsample.blocks.upsample import UPSAMPLER_KINDS

torch.manual_seed(0)


def constant_affine(spade: SPADE, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(1 + gamma, beta) per channel for a condition equal to vector ``label`` (L,) at every
    pixel, computed from the weights: every tap of a convolution then sees the same vector."""
    conv = spade.shared[0]
    hidden = torch.relu(conv.weight.sum(dim=(2, 3)) @ label + conv.bias)
    gamma = spade.gamma.weight.sum(dim=(2, 3)) @ hidden + spade.gamma.bias
    beta = spade.beta.weight.sum(dim=(2, 3)) @ hidden + spade.beta.bias
    return 1 + gamma, beta


def one_hot_map(classes: torch.Tensor, num: int) -> torch.Tensor:
    return F.one_hot(classes, num).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_spade_with_a_constant_label_map_is_a_norm_with_a_learned_affine(norm: str) -> None:
    spade = SPADE(channels=5, condition_channels=4, hidden=6, norm=norm)
    x = torch.randn(3, 5, 7, 9) * 2 + 1
    condition = one_hot_map(torch.full((3, 7, 9), 2), 4)
    weight, bias = constant_affine(spade, F.one_hot(torch.tensor(2), 4).float())
    if norm == "batch":
        expected = F.batch_norm(x, None, None, weight, bias, training=True)
    else:
        expected = F.instance_norm(x, weight=None, bias=None) * weight.view(1, -1, 1, 1)
        expected = expected + bias.view(1, -1, 1, 1)
    torch.testing.assert_close(spade(x, condition), expected, rtol=1e-4, atol=1e-5)


def test_spade_modulates_each_region_by_its_own_class() -> None:
    spade = SPADE(channels=3, condition_channels=3, hidden=4).eval()  # running statistics
    x = torch.randn(2, 3, 12, 12)
    classes = torch.zeros(2, 12, 12, dtype=torch.long)
    classes[:, :, 6:] = 1  # left half class 0, right half class 1
    out = spade(x, one_hot_map(classes, 3))
    normalised = F.batch_norm(x, spade.norm.running_mean, spade.norm.running_var, training=False)
    for cls, columns in ((0, slice(0, 4)), (1, slice(8, 12))):  # away from the boundary
        weight, bias = constant_affine(spade, F.one_hot(torch.tensor(cls), 3).float())
        expected = normalised * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
        torch.testing.assert_close(out[..., columns], expected[..., columns], rtol=1e-4, atol=1e-5)


def test_spade_resizes_the_condition_by_nearest_neighbour() -> None:
    spade = SPADE(channels=2, condition_channels=3, hidden=4)
    x = torch.randn(2, 2, 8, 10)
    small = one_hot_map(torch.randint(0, 3, (2, 4, 5)), 3)
    big = small.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(spade(x, small), spade(x, big))


@pytest.mark.parametrize(("c_in", "c_out"), [(8, 8), (8, 4)])
def test_spade_res_block_shapes_and_shortcut(c_in: int, c_out: int) -> None:
    block = SPADEResBlock(c_in, c_out, condition_channels=3, hidden=4)
    out = block(torch.randn(2, c_in, 5, 7), one_hot_map(torch.randint(0, 3, (2, 10, 14)), 3))
    assert out.shape == (2, c_out, 5, 7)
    assert (block.shortcut is None) == (c_in == c_out)
    assert hasattr(block.conv_0, "parametrizations")  # spectral normalisation
    plain = SPADEResBlock(c_in, c_out, 3, hidden=4, spectral_norm=False)
    assert not hasattr(plain.conv_0, "parametrizations")


def test_spade_res_block_is_the_residual_formula() -> None:
    block = SPADEResBlock(4, 4, condition_channels=2, hidden=3, spectral_norm=False)
    x, condition = torch.randn(2, 4, 6, 6), one_hot_map(torch.randint(0, 2, (2, 6, 6)), 2)
    dx = block.conv_0(F.leaky_relu(block.norm_0(x, condition), 0.2))
    dx = block.conv_1(F.leaky_relu(block.norm_1(dx, condition), 0.2))
    torch.testing.assert_close(block(x, condition), x + dx)


@pytest.mark.parametrize("size", [(96, 128), (192, 256), (37, 45), (1, 3)])
def test_generator_output_has_the_label_maps_size(size: tuple[int, int]) -> None:
    generator = SPADEGenerator(5, ngf=2, num_blocks=4, noise_channels=3, spade_hidden=4)
    labels = one_hot_map(torch.randint(0, 5, (2, *size)), 5)
    images = generator(labels)
    assert images.shape == (2, 3, *size)
    assert images.abs().max() <= 1
    padded = generator.stage_sizes(*size)[-1]  # padded to a multiple of 2**3, cropped back
    assert all(p % 8 == 0 and 0 <= p - s < 8 for p, s in zip(padded, size, strict=True))


@pytest.mark.parametrize("upsampler", ["nearest", *UPSAMPLER_KINDS])
def test_every_upsampler_fits_between_the_blocks(upsampler: str) -> None:
    generator = SPADEGenerator(3, ngf=2, num_blocks=3, noise_channels=0, upsampler=upsampler)
    labels = one_hot_map(torch.randint(0, 3, (1, 17, 23)), 3)
    assert generator(labels).shape == (1, 3, 17, 23)
    if upsampler != "nearest":
        assert sum(p.numel() for p in generator.ups.parameters()) > 0


def test_generator_noise_makes_the_image_and_is_repeatable() -> None:
    generator = SPADEGenerator(4, ngf=2, num_blocks=3, noise_channels=3, spade_hidden=4).eval()
    labels = one_hot_map(torch.randint(0, 4, (2, 12, 16)), 4)
    noise = torch.randn(2, 3)
    with torch.no_grad():
        first = generator(labels, noise)
        torch.testing.assert_close(generator(labels, noise), first)
        assert not torch.allclose(generator(labels, torch.randn(2, 3)), first)
        spread = noise[:, :, None, None].expand(-1, -1, 12, 16)
        torch.testing.assert_close(generator(labels, spread), first)  # a vector is spread
        torch.manual_seed(5)
        drawn = generator(labels)
        torch.manual_seed(5)
        torch.testing.assert_close(generator(labels), drawn)  # drawn from the global generator
    with pytest.raises(ValueError, match=r"noise must be \(N, 3\)"):
        generator(labels, torch.randn(2, 4))


def test_generator_without_noise_channels_is_deterministic() -> None:
    generator = SPADEGenerator(4, ngf=2, num_blocks=2, noise_channels=0).eval()
    labels = one_hot_map(torch.randint(0, 4, (1, 8, 8)), 4)
    with torch.no_grad():
        torch.testing.assert_close(generator(labels), generator(labels))
    assert isinstance(generator.stem, nn.Conv2d) and generator.stem.in_channels == 4


def test_generator_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="num_blocks"):
        SPADEGenerator(3, num_blocks=7)
    with pytest.raises(ValueError, match="upsampler"):
        SPADEGenerator(3, num_blocks=2, upsampler="bicubic")
    with pytest.raises(ValueError, match=r"expects \(N, 3, H, W\)"):
        SPADEGenerator(3, ngf=2, num_blocks=2)(torch.zeros(1, 4, 8, 8))
