"""U-Net encoder-decoder generator of pix2pix (Isola et al., CVPR 2017) from the shared blocks.

The encoder halves the resolution ``depth`` times with 4x4 stride-2 convolutions (LeakyReLU 0.2,
batch norm except on the first and the innermost level); the decoder doubles it again with one
of the toolkit's upsamplers (``blocks.make_upsampler``: transposed convolution as in the paper,
resize-conv or pixel shuffle), batch norm and ReLU, and concatenates at every level the encoder
feature of the same resolution (the skip connections). The only noise is dropout in the decoder
(:class:`NoiseDropout`), kept on at inference as in the paper.

The layout and the order of the parameters are those of the reference PyTorch implementation
(``UnetGenerator`` of junyanz/pytorch-CycleGAN-and-pix2pix with batch norm), whose in-place
LeakyReLU makes every skip connection carry the activated encoder feature; the tests compare the
two with copied weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsample.blocks.checks import check_images
from upsample.blocks.init import dcgan_init_
from upsample.blocks.upsample import UpsamplerKind, check_upsampler, make_upsampler


class NoiseDropout(nn.Dropout):
    """Dropout used as the generator's noise source: active in training and, while
    ``at_inference`` is True, in evaluation mode too (pix2pix keeps dropout on at test time).

    Element-wise: geometry unchanged (``upsample.blocks.receptive_field`` gives it no row).
    """

    def __init__(self, p: float = 0.5, at_inference: bool = True) -> None:
        super().__init__(p)
        self.at_inference = at_inference

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training or self.at_inference, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, at_inference={self.at_inference}"


class UNetLevel(nn.Module):
    """One resolution level: ``down`` (stride-2 conv), the ``inner`` levels, ``up`` (x2).

    Every level but the outermost returns ``cat([x, up(inner(down(x)))])`` (the skip connection;
    ``2 * C`` channels for ``C`` input channels), the outermost returns the image. An odd height
    or width is padded by one row/column (replicating the edge) before ``down`` and the upsampled
    result is cropped back, so any size works and the output has the input's size.
    """

    def __init__(self, down: nn.Module, inner: nn.Module | None, up: nn.Module, skip: bool):
        super().__init__()
        self.down = down
        self.inner = inner
        self.up = up
        self.skip = skip

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        padded = x
        if height % 2 or width % 2:
            padded = F.pad(x, (0, width % 2, 0, height % 2), mode="replicate")
        y = self.down(padded)
        if self.inner is not None:
            y = self.inner(y)
        y = self.up(y)[..., :height, :width]
        return torch.cat([x, y], dim=1) if self.skip else y


class UNetGenerator(nn.Module):
    """pix2pix U-Net: (N, in_channels, H, W) -> (N, out_channels, H, W) in [-1, 1], any H, W.

    Level k (1 = outermost) has ``ngf * min(2**(k-1), max_width_multiplier)`` channels; the
    innermost level ``depth`` sees the input at stride ``2**depth`` (depth 8: 1x1 for 256x256, the
    paper's "C64-C128-C256-C512-C512-C512-C512-C512" encoder). Dropout (``dropout``, 0 for none)
    is applied after the batch norm of the ``dropout_levels`` decoder levels just outside the
    innermost one (3 levels for depth 8, the paper's "CD512-CD512-CD512"), and stays on at
    inference unless ``noise_at_inference`` is False (see :meth:`set_noise`).

    Args:
        in_channels: input channels (e.g. one-hot classes of a label map).
        out_channels: image channels.
        ngf: width of the outermost level.
        depth: number of stride-2 levels (>= 2).
        max_width_multiplier: cap on the width multiplier (8 in the paper).
        upsampler: ``transposed`` (kernel 4, stride 2, padding 1, as in the paper),
            ``resize_conv`` or ``pixel_shuffle`` (checkerboard-free).
        dropout: dropout probability of the noise levels.
        dropout_levels: how many levels get dropout (capped at ``depth - 2``: neither the
            outermost nor the innermost level has any).
        noise_at_inference: keep dropout on in evaluation mode.

    Weights are initialised N(0, 0.02) as in the paper (``blocks.dcgan_init_``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 3,
        ngf: int = 64,
        depth: int = 8,
        max_width_multiplier: int = 8,
        upsampler: UpsamplerKind = "transposed",
        dropout: float = 0.5,
        dropout_levels: int = 3,
        noise_at_inference: bool = True,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        check_upsampler(upsampler)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if dropout_levels < 0:
            raise ValueError(f"dropout_levels must be >= 0, got {dropout_levels}")
        dropout_levels = min(dropout_levels, depth - 2)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.ngf, self.depth, self.upsampler = ngf, depth, upsampler
        widths = [ngf * min(2**k, max_width_multiplier) for k in range(depth)]
        noisy = set(range(depth - 1 - dropout_levels, depth - 1)) if dropout > 0 else set()
        level: UNetLevel | None = None
        for k in reversed(range(depth)):  # 0-based: k = 0 is the outermost level
            outermost, innermost = k == 0, k == depth - 1
            outer = in_channels if outermost else widths[k - 1]
            down: list[nn.Module] = [nn.Conv2d(outer, widths[k], 4, 2, 1, bias=False)]
            if not (outermost or innermost):
                down.append(nn.BatchNorm2d(widths[k]))
            if not innermost:
                down.append(nn.LeakyReLU(0.2))
            up_in = widths[k] if innermost else 2 * widths[k]
            up_out = out_channels if outermost else widths[k - 1]
            up: list[nn.Module] = [
                nn.ReLU(),
                make_upsampler(upsampler, up_in, up_out, 2, bias=outermost),
            ]
            if outermost:
                up.append(nn.Tanh())
            else:
                up.append(nn.BatchNorm2d(up_out))
                if k in noisy:
                    up.append(NoiseDropout(dropout, noise_at_inference))
            level = UNetLevel(nn.Sequential(*down), level, nn.Sequential(*up), not outermost)
        self.net = level
        dcgan_init_(self)

    def set_noise(self, at_inference: bool) -> UNetGenerator:
        """Keep the dropout noise on (True) or off (False) in evaluation mode."""
        for module in self.modules():
            if isinstance(module, NoiseDropout):
                module.at_inference = at_inference
        return self

    @property
    def noisy(self) -> bool:
        """Whether the generator has dropout noise at all."""
        return any(isinstance(module, NoiseDropout) for module in self.modules())

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self.in_channels, "UNetGenerator")
        return self.net(x)
