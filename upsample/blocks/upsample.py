"""Learnable upsamplers: (N, in_channels, H, W) -> (N, out_channels, H * scale, W * scale)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal, get_args

from torch import Tensor, nn

from upsample.blocks.init import bilinear_init_, icnr_

UpsamplerKind = Literal["transposed", "resize_conv", "pixel_shuffle"]
UPSAMPLER_KINDS: tuple[str, ...] = get_args(UpsamplerKind)


def check_upsampler(kind: str) -> UpsamplerKind:
    """``kind`` when it names an upsampler (one of ``UPSAMPLER_KINDS``), else ``ValueError``."""
    if kind not in UPSAMPLER_KINDS:
        raise ValueError(f"upsampler must be one of {UPSAMPLER_KINDS}, got {kind!r}")
    return kind  # type: ignore[return-value]


def _check_scale(scale: int) -> int:
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    return scale


def _check_scale_and_kernel(scale: int, kernel_size: int) -> None:
    """A conv-then-upsample layer needs a positive int scale and an odd ("same") kernel."""
    _check_scale(scale)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")


def upconv_geometry(scale: int) -> tuple[int, int]:
    """(kernel_size, padding) of a transposed conv with stride ``scale`` whose output is exactly
    ``H * scale`` and whose bilinear kernel is aligned like ``align_corners=False``:
    kernel ``2s`` and padding ``s / 2`` for even s, kernel ``2s - 1`` and padding ``(s - 1) / 2``
    for odd s (s = 1 gives a 1x1 kernel)."""
    _check_scale(scale)
    return (2 * scale if scale % 2 == 0 else 2 * scale - 1), scale // 2


class UpConv(nn.Module):
    """Transposed-convolution upsampler (kernel 2s, stride s, padding s/2; see upconv_geometry).

    (N, in_channels, H, W) -> (N, out_channels, H * scale, W * scale).
    ``bilinear_init``: start as bilinear interpolation (``bilinear_kernel``; equal to
    ``F.interpolate(mode="bilinear", align_corners=False)`` except in the outer ``scale // 2``
    rows and columns, where interpolation replicates the edge and the transposed conv sees zeros).
    ``learnable=False`` freezes the weight (requires ``bilinear_init``). No bias by default, as in
    FCN.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale: int,
        bilinear_init: bool = True,
        learnable: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        kernel_size, padding = upconv_geometry(scale)
        if not learnable and not bilinear_init:
            raise ValueError("learnable=False freezes the weights: it needs bilinear_init=True")
        self.scale = scale
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride=scale, padding=padding, bias=bias
        )
        if bilinear_init:
            bilinear_init_(self.conv)
        if not learnable:
            self.conv.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class ResizeConv(nn.Sequential):
    """Resize then convolve (Odena et al. 2016, checkerboard-free):
    ``Upsample(scale, mode)`` then a ``kernel_size`` conv with "same" padding.

    (N, in_channels, H, W) -> (N, out_channels, H * scale, W * scale).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale: int,
        mode: str = "nearest",
        kernel_size: int = 3,
        bias: bool = True,
    ) -> None:
        _check_scale_and_kernel(scale, kernel_size)
        align = False if mode in ("bilinear", "bicubic") else None
        super().__init__(
            OrderedDict(
                upsample=nn.Upsample(scale_factor=scale, mode=mode, align_corners=align),
                conv=nn.Conv2d(
                    in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias
                ),
            )
        )
        self.scale = scale
        self.in_channels, self.out_channels = in_channels, out_channels


class PixelShuffleUp(nn.Sequential):
    """Sub-pixel convolution (Shi et al. 2016): a conv to ``out_channels * scale**2`` channels
    then ``nn.PixelShuffle(scale)``, ICNR-initialised so that it starts as nearest-neighbour
    upsampling of a conv (every scale x scale output block constant).

    (N, in_channels, H, W) -> (N, out_channels, H * scale, W * scale).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale: int,
        kernel_size: int = 3,
        bias: bool = True,
    ) -> None:
        _check_scale_and_kernel(scale, kernel_size)
        conv = nn.Conv2d(
            in_channels,
            out_channels * scale * scale,
            kernel_size,
            padding=kernel_size // 2,
            bias=bias,
        )
        icnr_(conv.weight, scale)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)  # equal within each sub-pixel group, as ICNR requires
        super().__init__(OrderedDict(conv=conv, shuffle=nn.PixelShuffle(scale)))
        self.scale = scale
        self.in_channels, self.out_channels = in_channels, out_channels


def make_upsampler(
    kind: UpsamplerKind, in_channels: int, out_channels: int, scale: int, **kwargs: object
) -> nn.Module:
    """Build an upsampler by name: "transposed" (:class:`UpConv`), "resize_conv"
    (:class:`ResizeConv`) or "pixel_shuffle" (:class:`PixelShuffleUp`); ``kwargs`` go to the
    class. (N, in_channels, H, W) -> (N, out_channels, H * scale, W * scale)."""
    classes: dict[str, type[nn.Module]] = {
        "transposed": UpConv,
        "resize_conv": ResizeConv,
        "pixel_shuffle": PixelShuffleUp,
    }
    return classes[check_upsampler(kind)](in_channels, out_channels, scale, **kwargs)
