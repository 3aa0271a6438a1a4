"""Generator / discriminator shapes and the DCGAN architecture rules; losses against formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan.core.losses import discriminator_loss, generator_loss
from gan.dcgan.models import Discriminator, Generator


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes(image_size: int, channels: int) -> None:
    generator = Generator(nz=8, ngf=4, channels=channels, image_size=image_size)
    discriminator = Discriminator(ndf=4, channels=channels, image_size=image_size)
    images = generator(torch.randn(3, 8))
    assert images.shape == (3, channels, image_size, image_size)
    assert images.abs().max() <= 1.0  # tanh output
    assert generator(torch.randn(3, 8, 1, 1)).shape == images.shape
    assert discriminator(images).shape == (3,)


@pytest.mark.parametrize("upsampler", ["resize_conv", "pixel_shuffle"])
def test_checkerboard_free_upsamplers(upsampler: str) -> None:
    generator = Generator(nz=8, ngf=4, channels=3, image_size=64, upsampler=upsampler)
    assert generator(torch.randn(2, 8)).shape == (2, 3, 64, 64)
    assert not any(
        isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2) for m in generator.modules()
    )


def test_discriminator_follows_dcgan_rules() -> None:
    discriminator = Discriminator(ndf=4, channels=3, image_size=64)
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs[:-1]] == [(2, 2)] * 4  # stride-2 downsampling, no pooling
    assert convs[-1].out_channels == 1 and convs[-1].kernel_size == (4, 4)
    assert not any(
        isinstance(m, nn.MaxPool2d | nn.AvgPool2d | nn.Linear) for m in discriminator.modules()
    )
    first = discriminator.net.down1
    assert not any(isinstance(m, nn.BatchNorm2d) for m in first.modules())
    for stage in ("down2", "down3", "down4"):
        assert any(
            isinstance(m, nn.BatchNorm2d) for m in getattr(discriminator.net, stage).modules()
        )
    slopes = {m.negative_slope for m in discriminator.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}


def test_dcgan_initialisation() -> None:
    torch.manual_seed(0)
    for network in (Generator(nz=100, ngf=64, channels=3, image_size=64), Discriminator(64, 3, 64)):
        weights = torch.cat(
            [
                m.weight.detach().flatten()
                for m in network.modules()
                if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
            ]
        )
        assert abs(float(weights.mean())) < 1e-3
        assert float(weights.std()) == pytest.approx(0.02, rel=0.05)


def test_bad_image_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="image_size"):
        Discriminator(ndf=4, channels=1, image_size=48)
    with pytest.raises(ValueError, match="expects"):
        Discriminator(ndf=4, channels=1, image_size=32)(torch.zeros(1, 3, 32, 32))


def test_bce_losses_match_formulas() -> None:
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2, 1.0])
    sigmoid = torch.sigmoid
    expected_d = -(torch.log(sigmoid(real)).mean() + torch.log(1 - sigmoid(fake)).mean())
    assert discriminator_loss(real, fake, "bce") == pytest.approx(float(expected_d), rel=1e-6)
    expected_g = -torch.log(sigmoid(fake)).mean()  # non-saturating
    assert generator_loss(fake, "bce") == pytest.approx(float(expected_g), rel=1e-6)
    smoothed = -(0.9 * torch.log(sigmoid(real)) + 0.1 * torch.log(1 - sigmoid(real))).mean()
    expected_smooth = smoothed - torch.log(1 - sigmoid(fake)).mean()
    loss = discriminator_loss(real, fake, "bce", label_smoothing=0.1)
    assert loss == pytest.approx(float(expected_smooth), rel=1e-6)


def test_hinge_losses_match_formulas() -> None:
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.2, -0.5])
    expected_d = F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    assert discriminator_loss(real, fake, "hinge") == pytest.approx(float(expected_d))
    assert generator_loss(fake, "hinge") == pytest.approx(-float(fake.mean()))
    with pytest.raises(ValueError, match="bce"):
        discriminator_loss(real, fake, "hinge", label_smoothing=0.1)


def test_non_saturating_gradient_is_large_for_confident_discriminator() -> None:
    # The reason for the non-saturating loss: when D rejects fakes confidently, G still learns.
    fake = torch.tensor([-10.0], requires_grad=True)
    generator_loss(fake, "bce").backward()
    assert float(-fake.grad) > 0.99
    saturating = torch.log(1 - torch.sigmoid(fake)).mean()
    (grad,) = torch.autograd.grad(saturating, fake)
    assert abs(float(grad)) < math.exp(-9)
