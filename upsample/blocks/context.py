"""Context modules that keep the spatial size: a dilated conv stack and ASPP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsample.blocks.conv import ConvNormAct, Norm


class DilatedStack(nn.Sequential):
    """3x3 ConvNormAct units with the given dilations, no residual connections.

    (N, channels, H, W) -> (N, channels, H, W). Each unit adds ``2 * dilation`` to the
    receptive field, so growing dilations (1, 2, 4, ...) grow it exponentially with depth while
    the parameter count grows linearly (Yu & Koltun 2016).
    """

    def __init__(
        self, channels: int, dilations: Sequence[int] = (1, 1, 2, 1, 1, 2), norm: Norm = "batch"
    ) -> None:
        if not dilations:
            raise ValueError("dilations must not be empty")
        super().__init__(
            *(ConvNormAct(channels, channels, 3, dilation=d, norm=norm) for d in dilations)
        )
        self.in_channels = self.out_channels = channels
        self.dilations = tuple(dilations)


class ASPPConv(ConvNormAct):
    """3x3 atrous conv + BN + ReLU; (N, in, H, W) -> (N, out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, rate: int) -> None:
        super().__init__(in_channels, out_channels, 3, dilation=rate)


class ASPPPooling(nn.Module):
    """Image-level features: global average pool, 1x1 conv + ReLU, bilinear upsampling back.

    (N, in, H, W) -> (N, out, H, W). No batch norm (unlike DeepLab): on a 1x1 map it fails in
    training with a batch of one and is noisy with small batches.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.act(self.conv(self.pool(x)))
        return F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3): a 1x1 branch, one 3x3 branch per rate and
    optionally image pooling, concatenated and projected by 1x1 conv + BN + ReLU + dropout.

    (N, in_channels, H, W) -> (N, out_channels, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        image_pooling: bool = True,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        branches: list[nn.Module] = [ConvNormAct(in_channels, out_channels, 1)]
        branches += [ASPPConv(in_channels, out_channels, rate) for rate in rates]
        if image_pooling:
            branches.append(ASPPPooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(
            ConvNormAct(len(branches) * out_channels, out_channels, 1), nn.Dropout(dropout)
        )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.rates = tuple(rates)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))
