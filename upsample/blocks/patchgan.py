"""PatchGAN discriminator (Isola et al., CVPR 2017): the FCN idea applied to the discriminator.

A fully convolutional stack scores every receptive-field window of its input as real or fake;
the window ("patch") is the receptive field of one output score, which
:func:`upsample.blocks.receptive_field` computes. The paper's default, 70x70, is three stride-2
layers.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import cache

import torch
from torch import Tensor, nn

from upsample.blocks.checks import check_images
from upsample.blocks.conv import discriminator_unit
from upsample.blocks.init import dcgan_init_
from upsample.blocks.receptive_field import ReceptiveFieldTable, receptive_field


def _layers(in_channels: int, ndf: int, num_strided: int, max_mult: int) -> OrderedDict:
    """The NLayerDiscriminator layout of the reference implementation: ``num_strided`` 4x4
    stride-2 convs (no norm on the first), one 4x4 stride-1 conv, a 4x4 stride-1 conv to 1."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    width = in_channels
    for n in range(num_strided + 1):
        out = ndf * min(2**n, max_mult)
        stride = 2 if n < num_strided else 1
        layers[f"conv{n + 1}"] = discriminator_unit(width, out, stride, first=n == 0)
        width = out
    layers["to_score"] = nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=1)
    return layers


@cache
def patch_sizes(max_strided: int = 6) -> dict[int, int]:
    """Receptive field of one score -> number of stride-2 layers, for 1..``max_strided``
    stride-2 layers ({16: 1, 34: 2, 70: 3, 142: 4, 286: 5, 574: 6})."""
    sizes = {}
    with torch.random.fork_rng(devices=[]):  # the probes' weights draw no global random numbers
        for num_strided in range(1, max_strided + 1):
            probe = nn.Sequential(_layers(1, 1, num_strided, 1))
            table = receptive_field(probe, 2 ** (num_strided + 4))
            sizes[table.total.receptive_field] = num_strided
    return sizes


class PatchDiscriminator(nn.Module):
    """Fully convolutional discriminator: (N, in_channels, H, W) -> (N, 1, H', W') logits, one
    per ``patch_size`` x ``patch_size`` window of the input.

    Widths ``ndf * min(2**n, max_width_multiplier)``; batch norm on every layer but the first and
    the last, LeakyReLU(0.2). ``patch_size`` chooses the number of stride-2 layers (one of
    :func:`patch_sizes`); ``receptive_field()`` reports the geometry layer by layer. Any H, W of
    at least ``3 * 2**layers`` works: H' = floor(H / 2**layers) - 2. Weights are initialised
    N(0, 0.02) as in the paper (``blocks.dcgan_init_``).
    """

    def __init__(
        self,
        in_channels: int,
        ndf: int = 64,
        patch_size: int = 70,
        max_width_multiplier: int = 8,
    ) -> None:
        super().__init__()
        choices = patch_sizes()
        if patch_size not in choices:
            raise ValueError(
                f"patch_size must be the receptive field of a PatchGAN, one of "
                f"{sorted(choices)}, got {patch_size!r}"
            )
        self.in_channels, self.ndf = in_channels, ndf
        self.num_strided = choices[patch_size]
        self.net = nn.Sequential(_layers(in_channels, ndf, self.num_strided, max_width_multiplier))
        dcgan_init_(self)
        self.patch_size = self.receptive_field().total.receptive_field
        assert self.patch_size == patch_size

    def receptive_field(
        self, input_size: int | tuple[int, int] | None = None
    ) -> ReceptiveFieldTable:
        """The :func:`upsample.blocks.receptive_field` table of this discriminator (default input
        size: the smallest power of two that gives a few scores)."""
        return receptive_field(self.net, input_size or 2 ** (self.num_strided + 4))

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self.in_channels, "PatchDiscriminator")
        return self.net(x)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}"
