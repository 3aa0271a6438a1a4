"""The U-Net segmentation discriminator of OASIS: its residual block against the reference
implementation's (``residual_block_D`` of boschresearch/OASIS, restated here without spectral
normalisation, the weights copied), and the network's N + 1 per-pixel outputs at the input's
size for any size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from upsample.blocks.unet_discriminator import ResidualDiscriminatorBlock, UNetDiscriminator

torch.manual_seed(0)


class ReferenceBlock(nn.Module):
    """OASIS's ``residual_block_D`` (models/discriminator.py), with plain convolutions."""

    def __init__(self, fin: int, fout: int, up_or_down: int, first: bool = False) -> None:
        super().__init__()
        self.up_or_down, self.first = up_or_down, first
        self.learned_shortcut = fin != fout
        if first:
            self.conv1 = nn.Sequential(nn.Conv2d(fin, fout, 3, 1, 1))
        elif up_or_down > 0:
            self.conv1 = nn.Sequential(
                nn.LeakyReLU(0.2), nn.Upsample(scale_factor=2), nn.Conv2d(fin, fout, 3, 1, 1)
            )
        else:
            self.conv1 = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(fin, fout, 3, 1, 1))
        self.conv2 = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(fout, fout, 3, 1, 1))
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, 1, 0)
        if up_or_down > 0:
            self.sampling: nn.Module = nn.Upsample(scale_factor=2)
        elif up_or_down < 0:
            self.sampling = nn.AvgPool2d(2)
        else:
            self.sampling = nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_s = self.shortcut(x)
        dx = self.conv2(self.conv1(x))
        if self.up_or_down < 0:
            dx = self.sampling(dx)
        return x_s + dx

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.first:
            if self.up_or_down < 0:
                x = self.sampling(x)
            if self.learned_shortcut:
                x = self.conv_s(x)
            return x
        if self.up_or_down > 0:
            x = self.sampling(x)
        if self.learned_shortcut:
            x = self.conv_s(x)
        if self.up_or_down < 0:
            x = self.sampling(x)
        return x


@pytest.mark.parametrize(
    ("fin", "fout", "resampling", "first"),
    [(3, 8, "down", True), (8, 16, "down", False), (16, 8, "up", False), (8, 8, "none", False)],
)
def test_residual_block_matches_oasis(fin: int, fout: int, resampling: str, first: bool) -> None:
    ours = ResidualDiscriminatorBlock(fin, fout, resampling, first, spectral=False)
    reference = ReferenceBlock(fin, fout, {"down": -1, "up": 1, "none": 0}[resampling], first)
    reference.conv1[-1].load_state_dict(ours.conv1.state_dict())
    reference.conv2[-1].load_state_dict(ours.conv2.state_dict())
    if ours.conv_s is not None:
        reference.conv_s.load_state_dict(ours.conv_s.state_dict())
    x = torch.randn(2, fin, 8, 12)
    torch.testing.assert_close(ours(x), reference(x))


@pytest.mark.parametrize("size", [(96, 128), (37, 45), (5, 3)])
def test_n_plus_one_logits_at_the_inputs_size(size: tuple[int, int]) -> None:
    discriminator = UNetDiscriminator(3, num_outputs=12 + 1, ndf=4, widths=(1, 1, 2, 2))
    logits = discriminator(torch.randn(2, 3, *size))
    assert logits.shape == (2, 13, *size)


def test_the_default_is_oasis_layout_with_spectral_norm() -> None:
    discriminator = UNetDiscriminator(3, num_outputs=5, ndf=2)
    assert discriminator.depth == 6 and len(discriminator.up) == 6
    assert [block.conv1.out_channels for block in discriminator.down] == [2, 2, 4, 4, 8, 8]
    assert discriminator.up[-1].conv2.out_channels == 64
    assert hasattr(discriminator.down[0].conv1, "parametrizations")
    assert not hasattr(discriminator.score, "parametrizations")  # the 1x1 scoring layer


def test_skip_connections_carry_the_encoder_features() -> None:
    """A change of one pixel reaches that pixel's logits through the shallow skip path even when
    the deep path is cut (the deepest block's output zeroed)."""
    discriminator = UNetDiscriminator(1, 2, ndf=2, widths=(1, 2), spectral=False)
    discriminator.up[0].register_forward_hook(lambda module, args, out: torch.zeros_like(out))
    x = torch.zeros(1, 1, 16, 16)
    y = x.clone()
    y[..., 2, 2] = 5.0
    difference = (discriminator(x) - discriminator(y)).abs().sum(1)[0]
    assert difference[2, 2] > 0
    assert difference[10:, 10:].max() == 0  # beyond the shallow path's receptive field


def test_bad_widths_are_named() -> None:
    with pytest.raises(ValueError, match="at least two encoder blocks"):
        UNetDiscriminator(3, 2, widths=(1,))
    with pytest.raises(ValueError, match="resampling"):
        ResidualDiscriminatorBlock(3, 3, "sideways")


@pytest.mark.parametrize("size", [(96, 128), (37, 45)])
def test_fcn_discriminator_scores_every_pixel_at_any_size(size: tuple[int, int]) -> None:
    from upsample.blocks import FCNDiscriminator, build_encoder

    discriminator = FCNDiscriminator(build_encoder("resnet18s", width=0.125), num_outputs=5)
    assert discriminator(torch.randn(2, 3, *size)).shape == (2, 5, *size)


def test_fcn_discriminator_keeps_the_encoders_batch_statistics() -> None:
    """In training mode the encoder's batch norms still use their running statistics: a batch's
    own statistics would tell generated batches from real ones."""
    from upsample.blocks import FCNDiscriminator, build_encoder

    discriminator = FCNDiscriminator(build_encoder("resnet18s", width=0.125), 3).train()
    norms = [m for m in discriminator.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(norm.training for norm in norms)
    assert discriminator.decoder.training
    images = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(discriminator(images)[:2], discriminator(images[:2]))
