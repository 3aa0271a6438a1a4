"""Spatially-adaptive denormalisation (SPADE; Park et al., CVPR 2019) and its residual block.

A SPADE layer normalises its input without an affine of its own and then modulates it pixel by
pixel with a scale and a bias computed from a condition map (a one-hot label map, possibly with
noise channels beside it), so that normalisation cannot wash the layout out:
``y = norm(x) * (1 + gamma(c)) + beta(c)``. The condition is resized (nearest neighbour) to the
input's size, so one condition map serves every resolution of a generator.

The convolutions on the condition pad by replicating the border, so a constant condition gives a
constant scale and bias over the whole map: SPADE is then exactly a batch (or instance) norm with
a learned affine, which is what the tests check it against.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

SpadeNorm = Literal["batch", "instance"]
SPADE_NORMS: tuple[str, ...] = get_args(SpadeNorm)


def _same_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    """A "same" convolution whose padding replicates the border."""
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        padding=kernel_size // 2,
        padding_mode="replicate",
    )


def resize_condition(condition: Tensor, size: tuple[int, int] | list[int]) -> Tensor:
    """``condition`` (N, L, H', W') resized to ``size`` (H, W) by nearest neighbour.

    Always resized, even to its own size (a copy): a branch on the size would fix an exported
    graph to the example's case."""
    return F.interpolate(condition, size=size, mode="nearest")


class SPADE(nn.Module):
    """``norm(x) * (1 + gamma(c)) + beta(c)`` with ``gamma``, ``beta`` convolutions of a shared
    ReLU feature of the condition ``c``.

    Args:
        channels: channels C of the normalised input.
        condition_channels: channels L of the condition map.
        hidden: channels of the shared feature (128 in the paper).
        kernel_size: odd kernel of the three convolutions (3 in the paper).
        norm: ``batch`` (the paper's, synchronised across devices by Lightning's
            ``sync_batchnorm``) or ``instance``; parameter-free either way.

    forward(x (N, C, H, W), condition (N, L, H', W')) -> (N, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        condition_channels: int,
        hidden: int = 128,
        kernel_size: int = 3,
        norm: SpadeNorm = "batch",
    ) -> None:
        super().__init__()
        if norm not in SPADE_NORMS:
            raise ValueError(f"norm must be one of {SPADE_NORMS}, got {norm!r}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.channels, self.condition_channels = channels, condition_channels
        if norm == "batch":
            self.norm: nn.Module = nn.BatchNorm2d(channels, affine=False)
        else:
            self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.shared = nn.Sequential(_same_conv(condition_channels, hidden, kernel_size), nn.ReLU())
        self.gamma = _same_conv(hidden, channels, kernel_size)
        self.beta = _same_conv(hidden, channels, kernel_size)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        return self.modulate(x, resize_condition(condition, x.shape[-2:]))

    def modulate(self, x: Tensor, condition: Tensor) -> Tensor:
        """:meth:`forward` for a condition already at ``x``'s size."""
        feature = self.shared(condition)
        return self.norm(x) * (1 + self.gamma(feature)) + self.beta(feature)


class SPADEResBlock(nn.Module):
    """The SPADE residual block: ``x_s + conv1(act(SPADE(conv0(act(SPADE(x))))))``, where the
    shortcut ``x_s`` is ``x`` or, when the width changes, a SPADE-modulated 1x1 convolution;
    ``act`` is LeakyReLU(0.2). The inner width is the smaller of the two.

    Args:
        in_channels / out_channels: widths of input and output.
        condition_channels / hidden / norm: the SPADE layers' (see :class:`SPADE`).
        spectral_norm: spectral normalisation of the three convolutions, as SPADE and OASIS
            train their generators.

    forward(x (N, in_channels, H, W), condition (N, L, H', W')) -> (N, out_channels, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        condition_channels: int,
        hidden: int = 128,
        norm: SpadeNorm = "batch",
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        middle = min(in_channels, out_channels)
        self.in_channels, self.out_channels = in_channels, out_channels
        normalised = _spectral if spectral_norm else _unchanged
        self.norm_0 = SPADE(in_channels, condition_channels, hidden, norm=norm)
        self.conv_0 = normalised(nn.Conv2d(in_channels, middle, 3, padding=1))
        self.norm_1 = SPADE(middle, condition_channels, hidden, norm=norm)
        self.conv_1 = normalised(nn.Conv2d(middle, out_channels, 3, padding=1))
        self.shortcut: SPADEShortcut | None = None
        if in_channels != out_channels:
            conv = normalised(nn.Conv2d(in_channels, out_channels, 1, bias=False))
            self.shortcut = SPADEShortcut(
                SPADE(in_channels, condition_channels, hidden, norm=norm), conv
            )

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        condition = resize_condition(condition, x.shape[-2:])  # once for the three SPADEs
        skip = x if self.shortcut is None else self.shortcut(x, condition)
        dx = self.conv_0(F.leaky_relu(self.norm_0.modulate(x, condition), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1.modulate(dx, condition), 0.2))
        return skip + dx


class SPADEShortcut(nn.Module):
    """The learned shortcut of a :class:`SPADEResBlock`: a 1x1 convolution of the SPADE-modulated
    input (no activation). forward(x, condition at x's size) -> (N, out_channels, H, W)."""

    def __init__(self, norm: SPADE, conv: nn.Module) -> None:
        super().__init__()
        self.norm, self.conv = norm, conv

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        return self.conv(self.norm.modulate(x, condition))


def _spectral(module: nn.Module) -> nn.Module:
    return spectral_norm(module)


def _unchanged(module: nn.Module) -> nn.Module:
    return module
