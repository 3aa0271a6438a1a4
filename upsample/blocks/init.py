"""Weight initialisation helpers (all modify in place and return their argument)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> Tensor:
    """Bilinear upsampling kernel of the FCN code, shape (in_channels, out_channels, k, k).

    ``factor = (k + 1) // 2``, ``center = factor - 1`` (odd k) or ``factor - 0.5`` (even k),
    value ``(1 - |y - center| / factor) * (1 - |x - center| / factor)``. It is the weight layout
    of ``nn.ConvTranspose2d``; with ``kernel_size = 2s`` (or ``2s - 1`` for odd s), stride s and
    padding ``s // 2`` (or ``(s - 1) // 2``) it reproduces bilinear interpolation.

    Channel placement: output channel j gets the filter from input channel ``j % in_channels``,
    so for ``in == out`` it is the diagonal i -> i (each channel upsampled on its own); with fewer
    outputs the extra inputs are ignored, with more outputs the inputs are repeated cyclically.
    """
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    filt_1d = 1 - (og - center).abs() / factor
    filt = (filt_1d[:, None] * filt_1d[None, :]).to(torch.get_default_dtype())
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    for j in range(out_channels):
        weight[j % in_channels, j] = filt
    return weight


@torch.no_grad()
def bilinear_init_(conv_transpose: nn.ConvTranspose2d) -> nn.ConvTranspose2d:
    """Set a (square, groups=1) ConvTranspose2d to bilinear upsampling; zero its bias."""
    k_h, k_w = conv_transpose.kernel_size
    if k_h != k_w or conv_transpose.groups != 1:
        raise ValueError(
            f"bilinear_init_ needs a square kernel and groups=1, got {conv_transpose.kernel_size} "
            f"and groups={conv_transpose.groups}"
        )
    c_in, c_out = conv_transpose.in_channels, conv_transpose.out_channels
    conv_transpose.weight.copy_(bilinear_kernel(c_in, c_out, k_h))
    if conv_transpose.bias is not None:
        conv_transpose.bias.zero_()
    return conv_transpose


@torch.no_grad()
def icnr_(
    weight: Tensor, scale: int, init: Callable[[Tensor], object] = nn.init.kaiming_normal_
) -> Tensor:
    """ICNR initialisation of a conv weight (out_channels * scale**2, in, k, k) followed by
    ``nn.PixelShuffle(scale)``: every group of ``scale**2`` consecutive output channels (the
    sub-pixel positions of one shuffled channel) gets the same kernel, so the shuffle starts as
    nearest-neighbour upsampling of a conv and produces no checkerboard (Aitken et al. 2017).
    """
    groups = scale * scale
    if weight.shape[0] % groups:
        raise ValueError(
            f"weight has {weight.shape[0]} output channels, not a multiple of {groups}"
        )
    sub = torch.empty(weight.shape[0] // groups, *weight.shape[1:], dtype=weight.dtype)
    init(sub)
    weight.copy_(sub.repeat_interleave(groups, dim=0))
    return weight


def _dcgan_normal_(weight: Tensor) -> None:
    nn.init.normal_(weight, 0.0, 0.02)


def _convs_before_pixel_shuffle(module: nn.Module) -> Iterator[tuple[nn.Conv2d, int]]:
    """Every convolution that a Sequential feeds straight into ``nn.PixelShuffle(r)`` (as
    ``blocks.PixelShuffleUp`` does), with ``r``."""
    for m in module.modules():
        if isinstance(m, nn.Sequential):
            for conv, shuffle in itertools.pairwise(m.children()):
                if isinstance(conv, nn.Conv2d) and isinstance(shuffle, nn.PixelShuffle):
                    yield conv, shuffle.upscale_factor


@torch.no_grad()
def dcgan_init_(module: nn.Module) -> nn.Module:
    """DCGAN initialisation of every submodule: conv / transposed conv / linear weights
    N(0, 0.02) and zero biases; batch-norm weights N(1, 0.02) and zero biases.

    Frozen parameters (``requires_grad=False``, e.g. a fixed bilinear ``UpConv``) are left
    alone, and a convolution feeding a pixel shuffle (``PixelShuffleUp``) keeps its ICNR
    structure (sub-kernel drawn from N(0, 0.02)).
    """

    def trainable(p: Tensor | None) -> bool:
        return p is not None and p.requires_grad

    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if trainable(m.weight):
                _dcgan_normal_(m.weight)
            if trainable(m.bias):
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            if trainable(m.weight):
                nn.init.normal_(m.weight, 1.0, 0.02)
            if trainable(m.bias):
                nn.init.zeros_(m.bias)
    for conv, scale in _convs_before_pixel_shuffle(module):
        if trainable(conv.weight):
            icnr_(conv.weight, scale, init=_dcgan_normal_)
    return module
