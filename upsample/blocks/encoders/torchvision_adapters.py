"""Torchvision VGG16 and ResNet-18/34/50 backbones behind the multi-scale encoder interface.

``weights`` is passed to the torchvision builder unchanged (None, a weights enum or its name),
so users with internet access can start from ImageNet weights.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torchvision
from torch import nn
from torchvision.models.vgg import cfgs as vgg_cfgs
from torchvision.models.vgg import make_layers as make_vgg_layers

from upsample.blocks.encoders.base import MultiScaleEncoder, encoder_strides

_VGG16_POOLS = (4, 9, 16, 23, 30)  # indices of the max pools in vgg16().features
_VGG16_CONV5 = (24, 26, 28)


@torch.no_grad()
def _adapt_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of ``conv`` taking ``in_channels`` inputs; its weight is the RGB weight summed
    over input channels and divided by ``in_channels`` (for one channel: exactly the network
    applied to the gray image repeated as RGB)."""
    if in_channels == conv.in_channels:
        return conv
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        bias=conv.bias is not None,
    )
    new.weight.copy_(conv.weight.sum(1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels)
    if conv.bias is not None:
        new.bias.copy_(conv.bias)
    return new


def _set_dilation(conv: nn.Conv2d, dilation: int) -> None:
    """Dilate a 3x3 'same' conv in place (padding follows so the size is kept)."""
    conv.dilation = (dilation, dilation)
    conv.padding = (dilation * (conv.kernel_size[0] - 1) // 2,) * 2


def _vgg16_features(weights: object) -> nn.Sequential:
    """``vgg16(weights).features``; without weights the 120M-parameter classifier, which takes
    seconds to initialise, is not built (same layers and initialisation as torchvision's VGG)."""
    if weights is not None:
        return torchvision.models.vgg16(weights=weights).features
    features = make_vgg_layers(vgg_cfgs["D"], batch_norm=False)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return features


class TorchvisionVGG16Encoder(MultiScaleEncoder):
    """``torchvision.models.vgg16().features`` split after pool2, pool3, pool4 and pool5.

    (N, in_channels, H, W) -> 4 features, channels (128, 256, 512, 512), sizes
    ``floor(H / stride)`` as :class:`blocks.VGGEncoder` (H, W >= output_stride). Output stride
    16: pool5 becomes 3x3 stride 1 padding 1; 8: pool4 too, and conv5_x get dilation 2.
    """

    def __init__(self, weights: object = None, output_stride: int = 32, in_channels: int = 3):
        super().__init__()
        self.in_channels = in_channels
        self.strides = encoder_strides(output_stride)
        self.min_input_size = output_stride
        features = _vgg16_features(weights)
        features[0] = _adapt_first_conv(features[0], in_channels)
        if output_stride <= 16:
            features[_VGG16_POOLS[4]] = nn.MaxPool2d(3, 1, 1)
        if output_stride == 8:
            features[_VGG16_POOLS[3]] = nn.MaxPool2d(3, 1, 1)
            for index in _VGG16_CONV5:
                _set_dilation(features[index], 2)
        bounds = (0, _VGG16_POOLS[1] + 1, _VGG16_POOLS[2] + 1, _VGG16_POOLS[3] + 1)
        ends = (*bounds[1:], _VGG16_POOLS[4] + 1)
        self.stages = nn.ModuleList(features[a:b] for a, b in zip(bounds, ends, strict=True))
        self.out_channels = (128, 256, 512, 512)


_RESNETS = {"resnet18": 1, "resnet34": 1, "resnet50": 4}  # name -> block expansion


def _dilate_basic_layer(layer: nn.Sequential, previous_dilation: int, dilation: int) -> None:
    """Trade the stride of a BasicBlock layer for dilation, in place, like torchvision's
    ``replace_stride_with_dilation`` does for Bottleneck layers (which BasicBlock refuses)."""
    for i, block in enumerate(layer):
        d = previous_dilation if i == 0 else dilation
        block.conv1.stride = (1, 1)
        _set_dilation(block.conv1, d)
        _set_dilation(block.conv2, d)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)
        block.stride = 1


class TorchvisionResNetEncoder(MultiScaleEncoder):
    """``torchvision.models.resnet18/34/50`` returning the outputs of layer1..layer4.

    (N, in_channels, H, W) -> 4 features, channels (64, 128, 256, 512) for resnet18/34 and
    (256, 512, 1024, 2048) for resnet50, sizes ``ceil(H / stride)``. Output stride 16 / 8 uses
    ``replace_stride_with_dilation`` (resnet50) or the same change made by hand (BasicBlock
    networks, for which torchvision refuses dilation).
    """

    def __init__(
        self,
        name: str = "resnet18",
        weights: object = None,
        output_stride: int = 32,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if name not in _RESNETS:
            raise ValueError(f"name must be one of {sorted(_RESNETS)}, got {name!r}")
        self.in_channels = in_channels
        self.strides = encoder_strides(output_stride)
        replace = [False, output_stride == 8, output_stride <= 16]
        builder = getattr(torchvision.models, name)
        if _RESNETS[name] == 4:
            model = builder(weights=weights, replace_stride_with_dilation=replace)
        else:
            model = builder(weights=weights)
            if output_stride == 8:
                _dilate_basic_layer(model.layer3, 1, 2)
                _dilate_basic_layer(model.layer4, 2, 4)
            elif output_stride == 16:
                _dilate_basic_layer(model.layer4, 1, 2)
        model.conv1 = _adapt_first_conv(model.conv1, in_channels)
        stem = OrderedDict(
            conv1=model.conv1,
            bn1=model.bn1,
            relu=model.relu,
            maxpool=model.maxpool,
            layer1=model.layer1,
        )
        self.stages = nn.ModuleList([nn.Sequential(stem), model.layer2, model.layer3, model.layer4])
        expansion = _RESNETS[name]
        self.out_channels = tuple(c * expansion for c in (64, 128, 256, 512))  # type: ignore[assignment]
