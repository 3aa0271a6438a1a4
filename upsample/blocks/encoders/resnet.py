"""ResNet encoder with basic and bottleneck blocks (torchvision's v1.5 layout)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from upsample.blocks.conv import ConvNormAct
from upsample.blocks.encoders.base import MultiScaleEncoder, encoder_strides


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return ConvNormAct(in_channels, out_channels, 1, stride, activation="none")


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN(-ReLU) units plus shortcut, then ReLU.

    (N, in_channels, H, W) -> (N, channels, ceil(H / stride), ceil(W / stride))."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = ConvNormAct(in_channels, channels, 3, stride, dilation)
        self.conv2 = ConvNormAct(channels, channels, 3, 1, dilation, activation="none")
        self.shortcut = _shortcut(in_channels, channels, stride)
        self.act = nn.ReLU(inplace=True)
        self.out_channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride, dilation), 1x1 expand to ``4 * channels``, plus shortcut.

    (N, in_channels, H, W) -> (N, 4 * channels, ceil(H / stride), ceil(W / stride))."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = ConvNormAct(in_channels, channels, 1)
        self.conv2 = ConvNormAct(channels, channels, 3, stride, dilation)
        self.conv3 = ConvNormAct(channels, out_channels, 1, activation="none")
        self.shortcut = _shortcut(in_channels, out_channels, stride)
        self.act = nn.ReLU(inplace=True)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


class ResNetEncoder(MultiScaleEncoder):
    """ResNet encoder: 7x7 stride-2 stem, 3x3 stride-2 max pool, four stages of residual blocks.

    (N, in_channels, H, W) -> 4 features (outputs of layer1..layer4) with channels
    ``base_width * (1, 2, 4, 8) * expansion`` (expansion 1 basic, 4 bottleneck). Every strided
    layer pads, so sizes round up: ``ceil(H / 4)``, ``ceil(H / 8)``, ... (97x131 -> 25x33,
    13x17, 7x9, 4x5); any input size >= 1 works.

    Output stride 16 or 8 replaces the stride of layer4 (and layer3) by dilation 2 (and 4),
    as torchvision's ``replace_stride_with_dilation``: the first block of a dilated stage keeps
    the previous dilation, the following blocks use the new one.
    """

    def __init__(
        self,
        in_channels: int = 3,
        block: Literal["basic", "bottleneck"] = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        base_width: int = 64,
        output_stride: int = 32,
    ) -> None:
        super().__init__()
        block_types = {"basic": BasicBlock, "bottleneck": Bottleneck}
        if block not in block_types:
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}")
        if len(layers) != 4:
            raise ValueError(f"layers must give 4 block counts, got {layers}")
        block_type = block_types[block]
        self.in_channels = in_channels
        self.strides = encoder_strides(output_stride)
        stem = nn.Sequential(
            OrderedDict(
                conv=ConvNormAct(in_channels, base_width, 7, stride=2),
                pool=nn.MaxPool2d(3, 2, 1),
            )
        )
        stages: list[nn.Module] = []
        channels_in, dilation = base_width, 1
        nominal = (1, 2, 2, 2)
        for i, (count, stride) in enumerate(zip(layers, nominal, strict=True)):
            previous_dilation = dilation
            if i > 0 and self.strides[i] == self.strides[i - 1]:  # stride traded for dilation
                dilation *= stride
                stride = 1
            channels = base_width * 2**i
            blocks = [block_type(channels_in, channels, stride, previous_dilation)]
            channels_in = channels * block_type.expansion
            blocks += [block_type(channels_in, channels, 1, dilation) for _ in range(1, count)]
            stages.append(nn.Sequential(*blocks))
        stages[0] = nn.Sequential(OrderedDict(stem=stem, layer1=stages[0]))
        self.stages = nn.ModuleList(stages)
        expansion = block_type.expansion
        self.out_channels = tuple(base_width * 2**i * expansion for i in range(4))  # type: ignore[assignment]
