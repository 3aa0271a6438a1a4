"""pix2pix blocks: the U-Net generator and the PatchGAN discriminator against the reference
PyTorch implementation (junyanz/pytorch-CycleGAN-and-pix2pix, written out below), shapes on odd
sizes, and the PatchGAN's reported receptive field against the gradient of one score."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from upsample.blocks import (
    NoiseDropout,
    PatchDiscriminator,
    UNetGenerator,
    patch_sizes,
    receptive_field,
)


# ------------------------------------------------------------------------ the reference models
class ReferenceUnetBlock(nn.Module):
    """``UnetSkipConnectionBlock`` with ``norm_layer=nn.BatchNorm2d`` (so ``use_bias=False``)."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False,
                 innermost=False, use_dropout=False):  # fmt: skip
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = nn.BatchNorm2d(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = nn.BatchNorm2d(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=False)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=False)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model = [*model, nn.Dropout(0.5)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


def reference_unet(input_nc, output_nc, num_downs, ngf, use_dropout=True) -> nn.Module:
    """``UnetGenerator`` of the reference implementation."""
    block = ReferenceUnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        block = ReferenceUnetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout)
    block = ReferenceUnetBlock(ngf * 4, ngf * 8, submodule=block)
    block = ReferenceUnetBlock(ngf * 2, ngf * 4, submodule=block)
    block = ReferenceUnetBlock(ngf, ngf * 2, submodule=block)
    return ReferenceUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)


def reference_patchgan(input_nc, ndf=64, n_layers=3) -> nn.Sequential:
    """``NLayerDiscriminator`` of the reference implementation (batch norm)."""
    sequence = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        previous, mult = mult, min(2**n, 8)
        sequence += [
            nn.Conv2d(ndf * previous, ndf * mult, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * mult),
            nn.LeakyReLU(0.2, True),
        ]
    previous, mult = mult, min(2**n_layers, 8)
    sequence += [
        nn.Conv2d(ndf * previous, ndf * mult, 4, 1, 1, bias=False),
        nn.BatchNorm2d(ndf * mult),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * mult, 1, 4, 1, 1),
    ]
    return nn.Sequential(*sequence)


def _copy_parameters_and_buffers(source: nn.Module, target: nn.Module) -> None:
    mine = list(target.state_dict().values())
    theirs = list(source.state_dict().values())
    assert [t.shape for t in mine] == [t.shape for t in theirs]
    with torch.no_grad():
        for a, b in zip(mine, theirs, strict=True):
            a.copy_(b)


def _randomise_batch_norms(module: nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=generator) * 0.1)


# ------------------------------------------------------------------------------------ U-Net
@pytest.mark.parametrize("depth", [5, 6])
def test_unet_equals_the_reference_implementation(depth: int) -> None:
    torch.manual_seed(0)
    reference = reference_unet(5, 3, depth, ngf=2)
    _randomise_batch_norms(reference)
    ours = UNetGenerator(5, 3, ngf=2, depth=depth, dropout_levels=depth - 5)
    _copy_parameters_and_buffers(reference, ours)
    x = torch.randn(3, 5, 64, 64)
    # evaluation: running statistics; the reference turns dropout off, ours when asked to
    reference.eval()
    ours.eval().set_noise(False)
    torch.testing.assert_close(ours(x), reference(x))
    # training: batch statistics and the same dropout masks from the same seed
    reference.train()
    ours.train()
    torch.manual_seed(1)
    expected = reference(x)
    torch.manual_seed(1)
    torch.testing.assert_close(ours(x), expected)


@pytest.mark.parametrize("upsampler", ["transposed", "resize_conv", "pixel_shuffle"])
@pytest.mark.parametrize("size", [(97, 75), (33, 64), (1, 1), (96, 128)])
def test_unet_keeps_any_input_size(upsampler: str, size: tuple[int, int]) -> None:
    generator = UNetGenerator(4, 3, ngf=2, depth=4, upsampler=upsampler, dropout_levels=2)
    x = torch.randn(2, 4, *size, requires_grad=True)
    y = generator(x)
    assert y.shape == (2, 3, *size)
    assert y.abs().max() <= 1
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in generator.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_unet_noise_stays_on_at_inference_unless_turned_off() -> None:
    generator = UNetGenerator(3, 3, ngf=2, depth=4, dropout_levels=2).eval()
    assert generator.noisy
    assert sum(isinstance(m, NoiseDropout) for m in generator.modules()) == 2
    x = torch.randn(1, 3, 32, 32)
    torch.manual_seed(0)
    first = generator(x)
    assert not torch.equal(first, generator(x)), "dropout noise is on in evaluation mode"
    torch.manual_seed(0)
    torch.testing.assert_close(generator(x), first)  # seeded: reproducible
    generator.set_noise(False)
    torch.testing.assert_close(generator(x), generator(x))
    assert not UNetGenerator(3, 3, ngf=2, depth=4, dropout=0.0).noisy


def test_unet_receptive_field_matches_the_gradient_extent() -> None:
    torch.manual_seed(0)
    generator = UNetGenerator(1, 1, ngf=2, depth=3, dropout=0.0).double().eval()
    size = 64
    table = receptive_field(generator, size)
    assert table.total.output_size == (size, size)
    extents = []
    for row in range(28, 36):  # every phase of the stride-8 innermost level
        x = torch.randn(1, 1, size, size, dtype=torch.float64, requires_grad=True)
        generator(x)[0, 0, row, row].backward()
        rows = x.grad[0, 0].abs().sum(dim=1).nonzero()
        if rows.numel():  # (all ReLUs before the last layer may be off for one pixel)
            extents.append(int(rows.max() - rows.min() + 1))
    assert max(extents) == table.total.receptive_field


def test_unet_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="upsampler"):
        UNetGenerator(3, upsampler="bicubic")
    with pytest.raises(ValueError, match="dropout_levels"):
        UNetGenerator(3, depth=4, dropout_levels=-1)
    capped = UNetGenerator(3, depth=4, dropout_levels=5)
    assert sum(isinstance(m, NoiseDropout) for m in capped.modules()) == 2
    with pytest.raises(ValueError, match=r"expects \(N, 3, H, W\)"):
        UNetGenerator(3, depth=2)(torch.zeros(1, 4, 8, 8))


# ---------------------------------------------------------------------------------- PatchGAN
def test_patch_sizes_are_the_known_receptive_fields() -> None:
    patch_sizes.cache_clear()
    state = torch.random.get_rng_state()
    assert patch_sizes() == {16: 1, 34: 2, 70: 3, 142: 4, 286: 5, 574: 6}
    assert torch.equal(torch.random.get_rng_state(), state), "seeded inits stay reproducible"
    assert PatchDiscriminator(3).patch_size == 70  # the paper's default
    with pytest.raises(ValueError, match=r"one of \[16, 34, 70, 142, 286, 574\], got 64"):
        PatchDiscriminator(3, patch_size=64)


@pytest.mark.parametrize(("patch_size", "n_layers"), [(16, 1), (34, 2), (70, 3), (142, 4)])
def test_patchgan_equals_the_reference_implementation(patch_size: int, n_layers: int) -> None:
    torch.manual_seed(0)
    reference = reference_patchgan(6, ndf=4, n_layers=n_layers)
    _randomise_batch_norms(reference)
    ours = PatchDiscriminator(6, ndf=4, patch_size=patch_size)
    _copy_parameters_and_buffers(reference, ours)
    x = torch.randn(2, 6, 3 * 2**n_layers + 5, 3 * 2**n_layers + 2)
    for mode in (False, True):
        reference.train(mode)
        ours.train(mode)
        torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize("patch_size", [16, 34, 70, 142])
@pytest.mark.parametrize("size", [(97, 75), (200, 131), (150, 150)])
def test_patchgan_shapes_on_odd_sizes(patch_size: int, size: tuple[int, int]) -> None:
    discriminator = PatchDiscriminator(3, ndf=2, patch_size=patch_size)
    strided = discriminator.num_strided
    expected = tuple(n // 2**strided - 2 for n in size)
    table = discriminator.receptive_field(size)
    assert table.total.output_size == expected
    assert discriminator(torch.randn(2, 3, *size)).shape == (2, 1, *expected)


@pytest.mark.parametrize("patch_size", [16, 34, 70, 142])
def test_patchgan_receptive_field_is_the_gradient_extent_of_one_score(patch_size: int) -> None:
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(2, ndf=2, patch_size=patch_size).double().eval()
    size = 2 * patch_size + 13
    x = torch.randn(1, 2, size, size + 6, dtype=torch.float64, requires_grad=True)
    scores = discriminator(x)
    row, column = scores.shape[-2] // 2, scores.shape[-1] // 2
    scores[0, 0, row, column].backward()
    support = x.grad[0].abs().sum(dim=0).nonzero()
    extent = (support.max(dim=0).values - support.min(dim=0).values + 1).tolist()
    assert extent == [patch_size, patch_size]
    assert discriminator.receptive_field((size, size + 6)).total.receptive_field_hw == (
        patch_size,
        patch_size,
    )
