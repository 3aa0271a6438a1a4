"""Multi-scale encoders (features at strides 4, 8, 16, 32)."""

from upsample.blocks.encoders.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MultiScaleEncoder,
    encoder_strides,
)
from upsample.blocks.encoders.registry import ENCODER_NAMES, build_encoder
from upsample.blocks.encoders.resnet import BasicBlock, Bottleneck, ResNetEncoder
from upsample.blocks.encoders.timm_adapter import TIMM_PREFIX, TimmEncoder
from upsample.blocks.encoders.torchvision_adapters import (
    TorchvisionResNetEncoder,
    TorchvisionVGG16Encoder,
)
from upsample.blocks.encoders.vgg import VGG16_DEPTHS, VGG16_WIDTHS, VGGEncoder, vgg_stage

__all__ = [
    "ENCODER_NAMES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TIMM_PREFIX",
    "VGG16_DEPTHS",
    "VGG16_WIDTHS",
    "BasicBlock",
    "Bottleneck",
    "MultiScaleEncoder",
    "ResNetEncoder",
    "TimmEncoder",
    "TorchvisionResNetEncoder",
    "TorchvisionVGG16Encoder",
    "VGGEncoder",
    "build_encoder",
    "encoder_strides",
    "vgg_stage",
]
