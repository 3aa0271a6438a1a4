"""Convolution + normalisation + activation unit."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Literal

from torch import nn

Norm = Literal["batch", "group", "none"]
Activation = Literal["relu", "leaky_relu", "none"]


def make_norm(norm: Norm, channels: int) -> nn.Module | None:
    """BatchNorm2d, GroupNorm (gcd(32, channels) groups) or None."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    if norm == "none":
        return None
    raise ValueError(f"norm must be 'batch', 'group' or 'none', got {norm!r}")


def make_activation(activation: Activation, negative_slope: float = 0.2) -> nn.Module | None:
    """ReLU, LeakyReLU(negative_slope) or None."""
    if activation == "relu":
        return nn.ReLU(inplace=True)
    if activation == "leaky_relu":
        return nn.LeakyReLU(negative_slope, inplace=True)
    if activation == "none":
        return None
    raise ValueError(f"activation must be 'relu', 'leaky_relu' or 'none', got {activation!r}")


class ConvNormAct(nn.Sequential):
    """Conv2d -> norm -> activation; (N, in_channels, H, W) -> (N, out_channels, H', W').

    ``padding=None`` means "same" for odd kernels: ``dilation * (kernel_size - 1) // 2``, so
    with stride 1 the spatial size is kept and with stride s it becomes ``ceil(H / s)``.
    The convolution has a bias only when there is no normalisation. Children are named
    ``conv``, ``norm`` and ``act`` (the last two only when present).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        padding: int | None = None,
        norm: Norm = "batch",
        activation: Activation = "relu",
        negative_slope: float = 0.2,
    ) -> None:
        if padding is None:
            if kernel_size % 2 == 0:
                raise ValueError(f"padding=None needs an odd kernel_size, got {kernel_size}")
            padding = dilation * (kernel_size - 1) // 2
        norm_layer = make_norm(norm, out_channels)
        act_layer = make_activation(activation, negative_slope)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=norm_layer is None,
        )
        if norm_layer is not None:
            layers["norm"] = norm_layer
        if act_layer is not None:
            layers["act"] = act_layer
        super().__init__(layers)
        self.in_channels = in_channels
        self.out_channels = out_channels


def discriminator_unit(
    in_channels: int, out_channels: int, stride: int = 2, first: bool = False
) -> ConvNormAct:
    """The DCGAN / PatchGAN discriminator unit: 4x4 conv (padding 1), batch norm unless
    ``first`` (the DCGAN guidelines leave the first layer unnormalised), LeakyReLU(0.2).

    (N, in_channels, H, W) -> (N, out_channels, floor((H - 2) / stride) + 1, ...).
    """
    return ConvNormAct(
        in_channels,
        out_channels,
        kernel_size=4,
        stride=stride,
        padding=1,
        norm="none" if first else "batch",
        activation="leaky_relu",
        negative_slope=0.2,
    )
