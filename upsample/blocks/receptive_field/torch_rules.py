"""Receptive-field rules for ``torch.nn`` layers and torchvision's ResNet blocks.

``nn.Sequential``: its children in order. ``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d``,
``AvgPool2d``, ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d``, ``Upsample``, ``PixelShuffle``,
``PixelUnshuffle`` and the padding layers: their exact geometry. Element-wise layers
(activations, normalisation, dropout, ``Identity``) leave the geometry unchanged and get no row.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from torch import nn
from torchvision.models.resnet import BasicBlock as TVBasicBlock
from torchvision.models.resnet import Bottleneck as TVBottleneck

from upsample.blocks.receptive_field.axes import (
    AdaptivePoolAxis,
    ConvAxis,
    ConvTransposeAxis,
    IdentityAxis,
    ResizeAxis,
    ShiftAxis,
    ShuffleAxis,
)
from upsample.blocks.receptive_field.graph import Branches, Chain, Layer, register_receptive_field


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def conv_layer(module: nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d) -> Layer:
    """Layer for a convolution or a max/average pooling module."""
    k = _pair(module.kernel_size)
    s = _pair(module.stride if module.stride is not None else module.kernel_size)
    d = _pair(getattr(module, "dilation", 1))
    ceil_mode = bool(getattr(module, "ceil_mode", False))
    padding = module.padding
    if padding == "valid":
        pads = [(0, 0), (0, 0)]
    elif padding == "same":
        totals = [d[i] * (k[i] - 1) for i in range(2)]
        pads = [(t // 2, t - t // 2) for t in totals]
    else:
        p = _pair(padding)
        pads = [(p[0], p[0]), (p[1], p[1])]
    axes = [ConvAxis(k[i], s[i], pads[i][0], pads[i][1], d[i], ceil_mode) for i in range(2)]
    return Layer(axes[0], axes[1], type(module).__name__)


def _conv_transpose_layer(module: nn.ConvTranspose2d) -> Layer:
    k, s, p = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
    op, d = _pair(module.output_padding), _pair(module.dilation)
    axes = [ConvTransposeAxis(k[i], s[i], p[i], op[i], d[i]) for i in range(2)]
    return Layer(axes[0], axes[1], "ConvTranspose2d")


def _upsample_layer(module: nn.Upsample) -> Layer:
    size = None if module.size is None else _pair(module.size)
    factor = None
    if module.scale_factor is not None:
        sf = module.scale_factor
        sf = (sf, sf) if isinstance(sf, (int, float)) else sf
        factor = tuple(Fraction(f).limit_denominator(1000) for f in sf)
    if module.recompute_scale_factor and factor is not None:
        raise ValueError("receptive_field does not support recompute_scale_factor=True")
    align = bool(module.align_corners)
    axes = [
        ResizeAxis(
            None if size is None else size[i],
            None if factor is None else factor[i],
            module.mode,
            align,
        )
        for i in range(2)
    ]
    return Layer(axes[0], axes[1], type(module).__name__)


def _adaptive_layer(module: nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) -> Layer:
    size = module.output_size
    size = (size, size) if isinstance(size, int) or size is None else size
    return Layer(AdaptivePoolAxis(size[0]), AdaptivePoolAxis(size[1]), type(module).__name__)


def _pad_layer(module: nn.Module) -> Layer:
    left, right, top, bottom = module.padding
    return Layer(ShiftAxis(top, bottom), ShiftAxis(left, right), type(module).__name__)


_POINTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Identity,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.modules.dropout._DropoutNd,
)


def _shuffle_layer(module: nn.PixelShuffle | nn.PixelUnshuffle) -> Layer:
    upscale = isinstance(module, nn.PixelShuffle)
    factor = module.upscale_factor if upscale else module.downscale_factor
    axis = ShuffleAxis(factor, upscale)
    return Layer(axis, axis, type(module).__name__)


def _pointwise_layer(module: nn.Module) -> Layer:
    return Layer(IdentityAxis(), IdentityAxis(), type(module).__name__, pointwise=True)


def residual_block_graph(block: nn.Module, shortcut: nn.Module | None) -> Branches:
    """A ResNet block: its ``conv1``, ``conv2`` (and ``conv3``) in order beside ``shortcut``
    (None: the identity), outputs summed. Their normalisations are element-wise and left out."""
    convs = [(name, getattr(block, name, None)) for name in ("conv1", "conv2", "conv3")]
    main = Chain([(name, conv) for name, conv in convs if conv is not None])
    branch = nn.Identity() if shortcut is None else shortcut
    return Branches([("main", main), ("shortcut", branch)], kind=type(block).__name__)


register_receptive_field(nn.Sequential, lambda module: Chain(list(module.named_children())))
for _type in (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d):
    register_receptive_field(_type, conv_layer)
register_receptive_field(nn.ConvTranspose2d, _conv_transpose_layer)
register_receptive_field(nn.Upsample, _upsample_layer)
for _type in (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d):
    register_receptive_field(_type, _adaptive_layer)
for _type in (nn.PixelShuffle, nn.PixelUnshuffle):
    register_receptive_field(_type, _shuffle_layer)
for _type in (nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d):
    register_receptive_field(_type, _pad_layer)
for _type in _POINTWISE:
    register_receptive_field(_type, _pointwise_layer)
for _type in (TVBasicBlock, TVBottleneck):
    register_receptive_field(_type, lambda block: residual_block_graph(block, block.downsample))
