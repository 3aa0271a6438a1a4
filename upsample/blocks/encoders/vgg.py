"""VGG-style encoder: stages of n 3x3 convs followed by a 2x2 max pool."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from upsample.blocks.conv import ConvNormAct, Norm
from upsample.blocks.encoders.base import MultiScaleEncoder, encoder_strides

VGG16_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 512)
VGG16_DEPTHS: tuple[int, ...] = (2, 2, 3, 3, 3)


def vgg_stage(
    index: int,
    in_channels: int,
    width: int,
    depth: int,
    norm: Norm = "none",
    dilation: int = 1,
    pool_stride: int = 2,
) -> OrderedDict[str, nn.Module]:
    """Layers of VGG stage ``index`` (1-based names ``conv{index}_{j}``, ``pool{index}``):
    ``depth`` 3x3 ConvNormAct units then a 2x2 stride-2 max pool. ``pool_stride=1`` replaces
    the pool by a 3x3 stride-1 padding-1 pool that keeps the size (DeepLab)."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for j in range(depth):
        layers[f"conv{index}_{j + 1}"] = ConvNormAct(
            in_channels if j == 0 else width, width, 3, dilation=dilation, norm=norm
        )
    if pool_stride == 2:
        layers[f"pool{index}"] = nn.MaxPool2d(2, 2)
    elif pool_stride == 1:
        layers[f"pool{index}"] = nn.MaxPool2d(3, 1, 1)
    else:
        raise ValueError(f"pool_stride must be 1 or 2, got {pool_stride}")
    return layers


class VGGEncoder(MultiScaleEncoder):
    """VGG encoder (VGG16 by default) returning the outputs of pool2..pool5.

    (N, in_channels, H, W) -> 4 features with channels ``widths[1:]`` and strides
    ``self.strides``. Pools round down (``floor``): sizes are ``floor(H / 4)``, ``floor(H / 8)``,
    ... (97x131 -> 24x32, 12x16, 6x8, 3x4), so inputs must be at least ``output_stride`` pixels
    in each dimension; pad the input to a multiple of the output stride for exact sizes.
    With output stride 16 pool5 keeps the size (3x3, stride 1); with 8 pool4 too, and the
    stage-5 convs get dilation 2.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = VGG16_WIDTHS,
        depths: Sequence[int] = VGG16_DEPTHS,
        output_stride: int = 32,
        norm: Norm = "none",
    ) -> None:
        super().__init__()
        if len(widths) != 5 or len(depths) != 5:
            raise ValueError(f"VGG needs 5 widths and 5 depths, got {widths} and {depths}")
        self.in_channels = in_channels
        self.strides = encoder_strides(output_stride)
        self.min_input_size = output_stride
        pool_strides = (2, 2, 2, 2 if output_stride >= 16 else 1, 2 if output_stride == 32 else 1)
        # stage-5 convs see the features after pool4: dilated when pool4 lost its stride.
        conv_dilations = (1, 1, 1, 1, 2 if output_stride == 8 else 1)
        blocks = []
        previous = in_channels
        for i in range(5):
            blocks.append(
                vgg_stage(
                    i + 1, previous, widths[i], depths[i], norm, conv_dilations[i], pool_strides[i]
                )
            )
            previous = widths[i]
        self.stages = nn.ModuleList(
            [
                nn.Sequential(OrderedDict([*blocks[0].items(), *blocks[1].items()])),
                nn.Sequential(blocks[2]),
                nn.Sequential(blocks[3]),
                nn.Sequential(blocks[4]),
            ]
        )
        self.out_channels = (widths[1], widths[2], widths[3], widths[4])
