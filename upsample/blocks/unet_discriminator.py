"""A U-Net segmentation network of residual blocks, as OASIS's discriminator (Schönfeld et al.,
ICLR 2021): an image -> per-pixel logits over ``num_outputs`` classes at the image's size.

The encoder halves the resolution at every residual block (average pooling), the decoder doubles
it again (nearest neighbour) and concatenates at every level the encoder feature of the same
resolution; a 1x1 convolution scores every pixel. There is no normalisation layer: the
convolutions carry spectral normalisation instead (optional). As OASIS's discriminator it has
``N + 1`` outputs, the N semantic classes and "fake"; the network itself is a plain segmenter.

Any height and width work: the image is padded (replicating the border) to a multiple of
``2**depth`` and the logits are cropped back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from upsample.blocks.checks import check_images

Resampling = Literal["down", "up", "none"]
#: OASIS's encoder widths in units of ``ndf`` (128, 128, 256, 256, 512, 512 for ndf = 128)
OASIS_D_WIDTHS = (1, 1, 2, 2, 4, 4)


class ResidualDiscriminatorBlock(nn.Module):
    """OASIS's discriminator block: ``shortcut(x) + conv2(act(conv1(act(x))))`` with the
    resampling (``down``: 2x2 average pooling after the convolutions; ``up``: x2 nearest before
    them) applied on both paths; ``act`` is LeakyReLU(0.2), left out before the first
    convolution of the network's first block (``first``, which sees the image itself). The
    shortcut is a 1x1 convolution when the width changes.

    forward: (N, in_channels, H, W) -> (N, out_channels, H', W'), H' = H / 2, 2 H or H.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        resampling: Resampling = "none",
        first: bool = False,
        spectral: bool = True,
    ) -> None:
        super().__init__()
        if resampling not in ("down", "up", "none"):
            raise ValueError(f"resampling must be 'down', 'up' or 'none', got {resampling!r}")
        wrap = spectral_norm if spectral else (lambda module: module)
        self.resampling, self.first = resampling, first
        self.conv1 = wrap(nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.conv2 = wrap(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.conv_s = (
            wrap(nn.Conv2d(in_channels, out_channels, 1)) if in_channels != out_channels else None
        )

    def _resample(self, x: Tensor) -> Tensor:
        if self.resampling == "down":
            return F.avg_pool2d(x, 2)
        if self.resampling == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return x

    def _shortcut(self, x: Tensor) -> Tensor:
        # OASIS: pool before the 1x1 convolution in the first block, after it elsewhere
        # (upsampling always comes first)
        if self.resampling == "up" or self.first:
            x = self._resample(x)
        if self.conv_s is not None:
            x = self.conv_s(x)
        if self.resampling == "down" and not self.first:
            x = self._resample(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        dx = x if self.first else F.leaky_relu(x, 0.2)
        if self.resampling == "up":
            dx = self._resample(dx)
        dx = self.conv2(F.leaky_relu(self.conv1(dx), 0.2))
        if self.resampling == "down":
            dx = self._resample(dx)
        return self._shortcut(x) + dx


class UNetDiscriminator(nn.Module):
    """Image -> per-pixel logits ``(N, num_outputs, H, W)``: OASIS's U-Net of residual blocks.

    Args:
        in_channels: image channels.
        num_outputs: classes scored at every pixel (OASIS: the semantic classes plus "fake").
        ndf: width unit; the encoder's widths are ``ndf * widths``.
        widths: one multiplier per encoder block (its length is the depth); OASIS's are
            ``OASIS_D_WIDTHS``. The decoder mirrors them and ends at ``decoder_out`` channels.
        decoder_out: width before the 1x1 scoring convolution (64 in OASIS).
        spectral: spectral normalisation of every convolution but the scoring one.
    """

    def __init__(
        self,
        in_channels: int,
        num_outputs: int,
        ndf: int = 128,
        widths: Sequence[int] = OASIS_D_WIDTHS,
        decoder_out: int = 64,
        spectral: bool = True,
    ) -> None:
        super().__init__()
        if len(widths) < 2:
            raise ValueError(f"widths needs at least two encoder blocks, got {tuple(widths)}")
        self.in_channels, self.num_outputs, self.depth = in_channels, num_outputs, len(widths)
        channels = [in_channels, *(ndf * w for w in widths)]
        self.down = nn.ModuleList(
            ResidualDiscriminatorBlock(channels[i], channels[i + 1], "down", i == 0, spectral)
            for i in range(self.depth)
        )
        # decoder level j takes the deeper level's output concatenated with the encoder skip
        ups = [ResidualDiscriminatorBlock(channels[-1], channels[-2], "up", spectral=spectral)]
        for level in range(self.depth - 2, -1, -1):
            out = channels[level] if level > 0 else decoder_out
            ups.append(
                ResidualDiscriminatorBlock(2 * channels[level + 1], out, "up", spectral=spectral)
            )
        self.up = nn.ModuleList(ups)
        self.score = nn.Conv2d(decoder_out, num_outputs, 1)

    def forward(self, images: Tensor) -> Tensor:
        check_images(images, self.in_channels, "UNetDiscriminator")
        height, width = images.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        x = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else images
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](x)
        for index, block in enumerate(self.up[1:], start=2):
            x = block(torch.cat([skips[-index], x], dim=1))
        return self.score(x)[..., :height, :width]
