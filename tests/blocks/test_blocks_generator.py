"""DCGAN generator up-stack: shapes, range, structure against the DCGAN reference."""

import pytest
import torch
from torch import nn

from upsample.blocks import GeneratorUpStack


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("upsampler", ["transposed", "resize_conv", "pixel_shuffle"])
def test_shapes_and_range(image_size: int, channels: int, upsampler: str) -> None:
    gen = GeneratorUpStack(
        nz=8, ngf=2, out_channels=channels, image_size=image_size, upsampler=upsampler
    )
    out = gen(torch.randn(2, 8))
    assert out.shape == (2, channels, image_size, image_size)
    assert out.abs().max() <= 1
    assert gen(torch.randn(2, 8, 1, 1)).shape == out.shape
    out.square().mean().backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize(("image_size", "first_width"), [(32, 4), (64, 8), (128, 16)])
def test_widths(image_size: int, first_width: int) -> None:
    gen = GeneratorUpStack(nz=4, ngf=3, out_channels=1, image_size=image_size)
    widths = [m.out_channels for m in gen.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert widths[0] == first_width * 3 and widths[-2] == 3 and widths[-1] == 1
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gen.layers.to_image.modules())


def test_matches_the_dcgan_reference_layout() -> None:
    nz, ngf, nc = 16, 4, 3
    reference = nn.Sequential(  # the PyTorch DCGAN example generator, 64x64
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )
    gen = GeneratorUpStack(nz, ngf, nc, 64)
    ours = [p for n, p in gen.named_parameters() if n != "layers.to_image.0.bias"]
    assert [p.shape for p in ours] == [p.shape for p in reference.parameters()]
    with torch.no_grad():
        for mine, theirs in zip(ours, reference.parameters(), strict=True):
            mine.copy_(theirs)
        gen.layers.to_image[0].bias.zero_()
    z = torch.randn(3, nz, 1, 1)
    torch.testing.assert_close(gen(z), reference(z))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="image_size"):
        GeneratorUpStack(8, 2, 1, 48)
    with pytest.raises(ValueError, match="upsampler"):
        GeneratorUpStack(8, 2, 1, 32, upsampler="deconv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        GeneratorUpStack(8, 2, 1, 32)(torch.randn(2, 7))
