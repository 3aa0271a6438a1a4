"""Turn a classifier's fully connected layers into equivalent convolutions."""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import Tensor, nn

_KEPT_AFTER_FLATTEN = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.modules.dropout._DropoutNd,
)


def _children(module: nn.Sequential, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """Children of nested Sequentials, flattened, with names joined by '_'."""
    items = []
    for name, child in module.named_children():
        full = f"{prefix}_{name}" if prefix else name
        if isinstance(child, nn.Sequential):
            items += _children(child, full)
        else:
            items.append((full, child))
    return items


@torch.no_grad()
def _linear_to_conv(linear: nn.Linear, channels: int, height: int, width: int) -> nn.Conv2d:
    conv = nn.Conv2d(channels, linear.out_features, (height, width), bias=linear.bias is not None)
    # nn.Flatten orders features as (C, H, W), row-major: the weight rows reshape directly.
    conv.weight.copy_(linear.weight.view(linear.out_features, channels, height, width))
    if linear.bias is not None:
        conv.bias.copy_(linear.bias)
    return conv


@torch.no_grad()
def _batchnorm_2d(norm: nn.BatchNorm1d) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(norm.num_features, norm.eps, norm.momentum, norm.affine)
    new.load_state_dict(norm.state_dict())
    return new


NamedLayers = list[tuple[str, nn.Module]]


def _dropped_flatten(name: str, module: nn.Module) -> bool:
    """Whether ``module`` is a Flatten, which the convolutions make unnecessary."""
    if not isinstance(module, nn.Flatten):
        return False
    if module.start_dim != 1:
        raise ValueError(f"layer {name!r}: only Flatten(start_dim=1) can be dropped")
    return True


def _spatial_layers(children: NamedLayers, x: Tensor) -> tuple[NamedLayers, Tensor, NamedLayers]:
    """Split ``children`` at the first Linear: the spatial layers kept (adaptive pooling that is
    the identity at this size is dropped, so that larger inputs are not pooled back), the map
    they make of ``x`` (N, C, H, W), and the first Linear with all that follows."""
    kept: NamedLayers = []
    for index, (name, module) in enumerate(children):
        if isinstance(module, nn.Linear):
            return kept, x, children[index:]
        if _dropped_flatten(name, module):
            continue
        out = module(x)
        is_adaptive = isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
        if not (is_adaptive and out.shape == x.shape):
            kept.append((name, module))
        x = out
    return kept, x, []


def _head_as_convs(children: NamedLayers, shape: tuple[int, ...], receives: str) -> NamedLayers:
    """The first Linear, reading a (C, H, W) map of ``shape`` (``receives`` says so in
    messages), and the layers after it, as their convolutional equivalents."""
    layers: NamedLayers = []
    for name, module in children:
        if _dropped_flatten(name, module):
            continue
        if isinstance(module, nn.Linear):
            c, h, w = shape
            if module.in_features != c * h * w:
                raise ValueError(
                    f"layer {name!r}: Linear expects {module.in_features} features but {receives}"
                )
            layers.append((name, _linear_to_conv(module, c, h, w)))
            shape = (module.out_features, 1, 1)
            receives = f"the previous layer gives {module.out_features}"
        elif isinstance(module, nn.BatchNorm1d):
            layers.append((name, _batchnorm_2d(module)))
        elif isinstance(module, _KEPT_AFTER_FLATTEN):
            layers.append((name, module))
        else:
            raise TypeError(
                f"layer {name!r}: cannot convolutionalize a {type(module).__name__} after the "
                "first Linear (expected Linear, activations, dropout or BatchNorm1d)"
            )
    return layers


@torch.no_grad()
def convolutionalize(classifier: nn.Sequential, input_shape: tuple[int, int, int]) -> nn.Sequential:
    """A fully convolutional copy of ``classifier`` (the original is not modified).

    ``classifier`` is an ``nn.Sequential`` (nested Sequentials are flattened) taking
    (N, C, H, W) inputs of shape ``input_shape = (C, H, W)``: spatial layers, then an optional
    ``nn.Flatten``, then ``nn.Linear`` layers with element-wise layers between them. The first
    Linear, seeing a C'xH'xW' map, becomes an H'xW' convolution with C' input channels (weights
    reshaped); later Linears become 1x1 convolutions; Flatten is dropped; activations and dropout
    are kept (BatchNorm1d becomes an equivalent BatchNorm2d). An adaptive pooling layer that is
    the identity at ``input_shape`` is dropped, so that larger inputs are not pooled back.

    The result maps (N, C, H, W) at the native size to (N, classes, 1, 1) with the same numbers
    as the classifier, and larger inputs to a map of scores: position (i, j) equals the
    classifier on the input window starting at (i, j) times the stride of the spatial layers
    (exactly when those layers do not pad; with padding, a window's border sees its neighbouring
    pixels instead of zeros).
    """
    if not isinstance(classifier, nn.Sequential):
        raise TypeError(
            f"convolutionalize expects an nn.Sequential, got {type(classifier).__name__}"
        )
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    children = _children(copy.deepcopy(classifier).eval())
    spatial, x, head = _spatial_layers(children, torch.zeros(1, *input_shape))
    if not head:
        raise ValueError("classifier has no nn.Linear layer to convolutionalize")
    c, h, w = x.shape[1:]
    receives = f"receives a {c}x{h}x{w} map ({c * h * w}) for input {tuple(input_shape)}"
    layers = OrderedDict([*spatial, *_head_as_convs(head, (c, h, w), receives)])
    return nn.Sequential(layers).train(classifier.training)
