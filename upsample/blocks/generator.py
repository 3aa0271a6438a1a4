"""DCGAN generator up-stack (Radford, Metz & Chintala 2016)."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Literal, get_args

from torch import Tensor, nn

from upsample.blocks.upsample import UpsamplerKind, check_upsampler, make_upsampler

ImageSize = Literal[32, 64, 128]
#: stride-2 stages between 4x4 and each image size (upsamplings here, downsamplings in a critic):
#: {32: 3, 64: 4, 128: 5}.
STAGES_FOR_SIZE: dict[int, int] = {size: int(math.log2(size // 4)) for size in get_args(ImageSize)}


def _up2(kind: UpsamplerKind, in_channels: int, out_channels: int, bias: bool) -> nn.Module:
    """A x2 upsampling; "transposed" is DCGAN's bare 4x4 stride-2 transposed convolution."""
    if kind == "transposed":
        return nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias)
    return make_upsampler(kind, in_channels, out_channels, 2, bias=bias)


class GeneratorUpStack(nn.Module):
    """Project-and-reshape then stride-2 upsampling stages to an image in [-1, 1].

    ``project``: 4x4 ConvTranspose from the 1x1 noise to ``ngf * 2**(n-1)`` channels at 4x4,
    BN, ReLU; ``up1``..``up{n-1}``: x2 upsampling (ConvTranspose kernel 4, stride 2, padding 1,
    or the ``upsampler`` alternative), BN, ReLU, halving the channels down to ``ngf``;
    ``to_image``: x2 upsampling to ``out_channels`` and tanh (no BN). n = 3, 4, 5 for
    image_size 32, 64, 128 (64: ngf*8 -> ngf*4 -> ngf*2 -> ngf -> out).

    forward: (N, nz) or (N, nz, 1, 1) -> (N, out_channels, image_size, image_size).
    """

    def __init__(
        self,
        nz: int,
        ngf: int,
        out_channels: int,
        image_size: int = 64,
        upsampler: UpsamplerKind = "transposed",
    ) -> None:
        super().__init__()
        if image_size not in STAGES_FOR_SIZE:
            raise ValueError(
                f"image_size must be one of {sorted(STAGES_FOR_SIZE)}, got {image_size!r}"
            )
        check_upsampler(upsampler)
        n = STAGES_FOR_SIZE[image_size]
        widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["project"] = nn.Sequential(
            nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        for i in range(1, n):
            layers[f"up{i}"] = nn.Sequential(
                _up2(upsampler, widths[i - 1], widths[i], bias=False),
                nn.BatchNorm2d(widths[i]),
                nn.ReLU(inplace=True),
            )
        layers["to_image"] = nn.Sequential(
            _up2(upsampler, widths[-1], out_channels, bias=True), nn.Tanh()
        )
        self.layers = nn.Sequential(layers)
        self.nz, self.ngf, self.out_channels = nz, ngf, out_channels
        self.image_size, self.upsampler = image_size, upsampler

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1:] != (self.nz, 1, 1):
            raise ValueError(
                f"GeneratorUpStack expects (N, {self.nz}) or (N, {self.nz}, 1, 1), "
                f"got {tuple(z.shape)}"
            )
        return self.layers(z)
