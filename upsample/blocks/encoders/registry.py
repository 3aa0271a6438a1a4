"""Build an encoder by name."""

from __future__ import annotations

from collections.abc import Mapping

from upsample.blocks.encoders.base import MultiScaleEncoder
from upsample.blocks.encoders.resnet import ResNetEncoder
from upsample.blocks.encoders.timm_adapter import TIMM_PREFIX, TimmEncoder, timm_model_name
from upsample.blocks.encoders.torchvision_adapters import (
    TorchvisionResNetEncoder,
    TorchvisionVGG16Encoder,
)
from upsample.blocks.encoders.vgg import VGG16_DEPTHS, VGG16_WIDTHS, VGGEncoder

_OWN_RESNETS = {
    "resnet18s": ("basic", (2, 2, 2, 2)),
    "resnet34s": ("basic", (3, 4, 6, 3)),
    "resnet50s": ("bottleneck", (3, 4, 6, 3)),
}
_OWN_VGGS = {"vgg": "none", "vgg_bn": "batch"}
_TORCHVISION = ("tv_vgg16", "tv_resnet18", "tv_resnet34", "tv_resnet50")
ENCODER_NAMES: tuple[str, ...] = (*_OWN_VGGS, *_OWN_RESNETS, *_TORCHVISION)


def _scaled(width: int, factor: float) -> int:
    return max(1, round(width * factor))


def build_encoder(
    name: str,
    in_channels: int = 3,
    output_stride: int = 32,
    width: float = 1.0,
    weights: object = None,
) -> MultiScaleEncoder:
    """Encoder by name, returning features at strides 4, 8, 16, 32 (see MultiScaleEncoder).

    Names: "vgg" (VGG16 layout), "vgg_bn" (with batch norm), "resnet18s", "resnet34s"
    (basic blocks), "resnet50s" (bottleneck) - trained from scratch, every width multiplied by
    ``width`` - and the torchvision backbones "tv_vgg16", "tv_resnet18", "tv_resnet34",
    "tv_resnet50", which take ``weights`` (torchvision's argument) and need ``width=1``;
    and ``"timm-<model>"`` for any timm model with a feature pyramid ("timm-tf_efficientnet_lite0",
    "timm-resnet50", ...), whose ``weights`` is None or a state dict in timm's key names
    (see ``TimmEncoder``).
    """
    if (model_name := timm_model_name(name)) is not None:
        if width != 1.0:
            raise ValueError(f"encoder {name!r} has fixed widths; width must be 1.0, got {width}")
        if weights is not None and not isinstance(weights, Mapping):
            raise TypeError(
                f"encoder {name!r} takes weights as a state dict (upsample.core.pretrained "
                f"resolves names such as 'imagenet'), got {type(weights).__name__}"
            )
        return TimmEncoder(model_name, output_stride, in_channels, state_dict=weights)
    if name not in ENCODER_NAMES:
        raise ValueError(
            f"unknown encoder {name!r}; choose one of {ENCODER_NAMES} or "
            f"'{TIMM_PREFIX}<timm model name>'"
        )
    if name in _TORCHVISION:
        if width != 1.0:
            raise ValueError(f"encoder {name!r} has fixed widths; width must be 1.0, got {width}")
        if name == "tv_vgg16":
            return TorchvisionVGG16Encoder(weights, output_stride, in_channels)
        return TorchvisionResNetEncoder(name[3:], weights, output_stride, in_channels)
    if weights is not None:
        raise ValueError(f"encoder {name!r} is trained from scratch; weights must be None")
    if name in _OWN_VGGS:
        widths = tuple(_scaled(w, width) for w in VGG16_WIDTHS)
        return VGGEncoder(in_channels, widths, VGG16_DEPTHS, output_stride, _OWN_VGGS[name])
    block, layers = _OWN_RESNETS[name]
    return ResNetEncoder(in_channels, block, layers, _scaled(64, width), output_stride)
