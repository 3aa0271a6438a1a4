"""The SPADE generator in the form OASIS trains it (Schönfeld et al., ICLR 2021): a label map
(and 3D noise) to an image, through SPADE residual blocks that upsample x2 between them.

The network starts from the condition (one-hot label map with ``noise_channels`` noise channels
beside it, the "3D noise") resized to ``1 / 2**(num_blocks - 1)`` of the output size, convolved
to the first block's width; every block is modulated by the full-resolution condition
(:class:`~upsample.blocks.spade.SPADE` resizes it), and between blocks the feature is upsampled
x2 by nearest neighbour (the paper's) or by one of the toolkit's learnable upsamplers
(``transposed``, ``resize_conv``, ``pixel_shuffle``). A last LeakyReLU, 3x3 convolution and tanh
make the image.

Any output size works with the same weights: the label map (and a noise map) is padded by
replicating its border to a multiple of ``2**(num_blocks - 1)`` and the image cropped back, so
96x128 and 192x256 label maps, or odd sizes, give images of their own size. The padding is
unconditional (no branch on the size), so an exported graph serves every size.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsample.blocks.checks import check_images
from upsample.blocks.spade import SpadeNorm, SPADEResBlock, resize_condition
from upsample.blocks.upsample import UPSAMPLER_KINDS, UpsamplerKind, make_upsampler

SpadeUpsampler = UpsamplerKind | Literal["nearest"]
#: width multipliers of OASIS's generator, deepest first (six blocks: 16, 16, 16, 8, 4, 2 -> 1)
OASIS_WIDTHS = (16, 16, 16, 8, 4, 2, 1)


class NearestUp(nn.Module):
    """Parameter-free x2 nearest-neighbour upsampling (SPADE's and OASIS's)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")


def spade_upsampler(kind: SpadeUpsampler, channels: int) -> nn.Module:
    """A x2 upsampler keeping ``channels``: ``nearest`` or a toolkit upsampler by name."""
    if kind == "nearest":
        return NearestUp()
    if kind not in UPSAMPLER_KINDS:
        raise ValueError(f"upsampler must be 'nearest' or one of {UPSAMPLER_KINDS}, got {kind!r}")
    return make_upsampler(kind, channels, channels, 2)


class SPADEGenerator(nn.Module):
    """Label map (+ noise) -> image in [-1, 1] at the label map's size.

    Args:
        label_channels: channels of the label map (one-hot classes, plus void if any).
        out_channels: image channels.
        ngf: width unit: block ``i`` has ``ngf * OASIS_WIDTHS[...]`` channels (the last
            ``num_blocks + 1`` multipliers).
        num_blocks: SPADE residual blocks (1 to 6); the output is ``2**(num_blocks - 1)`` times
            the size the network starts from.
        noise_channels: channels of the 3D noise beside the label map (0: a deterministic
            generator). OASIS uses 64.
        spade_hidden: width of each SPADE layer's shared feature (128 in the paper).
        upsampler: ``nearest`` (the paper's) or a toolkit upsampler between blocks.
        norm: the SPADE layers' parameter-free norm (``batch`` or ``instance``).
        spectral_norm: spectral normalisation of the residual blocks' convolutions.

    forward(labels (N, label_channels, H, W), noise: None, (N, noise_channels) or
    (N, noise_channels, H, W)) -> (N, out_channels, H, W). ``noise`` None draws a vector per
    image from the global generator (seed it for repeatable images); a vector is spread over
    every pixel, a map is used as it is.
    """

    def __init__(
        self,
        label_channels: int,
        out_channels: int = 3,
        ngf: int = 64,
        num_blocks: int = 6,
        noise_channels: int = 64,
        spade_hidden: int = 128,
        upsampler: SpadeUpsampler = "nearest",
        norm: SpadeNorm = "batch",
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        if not 1 <= num_blocks <= len(OASIS_WIDTHS) - 1:
            raise ValueError(f"num_blocks must be in 1..{len(OASIS_WIDTHS) - 1}, got {num_blocks}")
        if noise_channels < 0:
            raise ValueError(f"noise_channels must be >= 0, got {noise_channels}")
        self.label_channels, self.out_channels = label_channels, out_channels
        self.noise_channels, self.num_blocks = noise_channels, num_blocks
        widths = [ngf * m for m in OASIS_WIDTHS[-(num_blocks + 1) :]]
        condition = label_channels + noise_channels
        self.stem = nn.Conv2d(condition, widths[0], 3, padding=1)
        self.blocks = nn.ModuleList(
            SPADEResBlock(widths[i], widths[i + 1], condition, spade_hidden, norm, spectral_norm)
            for i in range(num_blocks)
        )
        self.ups = nn.ModuleList(
            spade_upsampler(upsampler, widths[i + 1]) for i in range(num_blocks - 1)
        )
        self.to_image = nn.Conv2d(widths[-1], out_channels, 3, padding=1)

    @property
    def size_multiple(self) -> int:
        """The padded label map's height and width are multiples of ``2**(num_blocks - 1)``."""
        return 2 ** (self.num_blocks - 1)

    def stage_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """The feature size of each block, coarsest first, for a label map of (height, width):
        the padded size divided by ``2**k``."""
        multiple = self.size_multiple
        rows, columns = -(-height // multiple), -(-width // multiple)
        return [(rows * 2**k, columns * 2**k) for k in range(self.num_blocks)]

    def condition(self, labels: Tensor, noise: Tensor | None = None) -> Tensor:
        """The label map with its noise channels: (N, label_channels + noise_channels, H, W)."""
        check_images(labels, self.label_channels, "SPADEGenerator")
        if not self.noise_channels:
            return labels
        batch, _, height, width = labels.shape
        if noise is None:
            noise = torch.randn(batch, self.noise_channels, device=labels.device)
        if noise.ndim == 2:
            noise = noise[:, :, None, None].expand(-1, -1, height, width)
        if tuple(noise.shape) != (batch, self.noise_channels, height, width):
            raise ValueError(
                f"SPADEGenerator: noise must be (N, {self.noise_channels}) or "
                f"(N, {self.noise_channels}, H, W) for labels {tuple(labels.shape)}, got "
                f"{tuple(noise.shape)}"
            )
        return torch.cat([labels, noise.to(labels.dtype)], dim=1)

    def forward(self, labels: Tensor, noise: Tensor | None = None) -> Tensor:
        height, width = labels.shape[-2:]
        multiple = self.size_multiple
        padded_height = (height + multiple - 1) // multiple * multiple
        padded_width = (width + multiple - 1) // multiple * multiple
        condition = F.pad(
            self.condition(labels, noise),
            (0, padded_width - width, 0, padded_height - height),
            mode="replicate",
        )
        x = self.stem(
            resize_condition(condition, (padded_height // multiple, padded_width // multiple))
        )
        for index, block in enumerate(self.blocks):
            x = block(x, condition)
            if index < len(self.ups):
                x = self.ups[index](x)
        image = torch.tanh(self.to_image(F.leaky_relu(x, 0.2)))
        return image[..., :height, :width]
