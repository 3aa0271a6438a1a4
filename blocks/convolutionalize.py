"""Turn a classifier's fully connected layers into equivalent convolutions."""

from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

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
    model = copy.deepcopy(classifier).eval()
    x = torch.zeros(1, *input_shape)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels: int | None = None  # set once the first Linear has been converted
    for name, module in _children(model):
        if isinstance(module, nn.Flatten):
            if module.start_dim != 1:
                raise ValueError(f"layer {name!r}: only Flatten(start_dim=1) can be dropped")
            continue
        if isinstance(module, nn.Linear):
            if channels is None:
                c, h, w = x.shape[1:]
                if module.in_features != c * h * w:
                    raise ValueError(
                        f"layer {name!r}: Linear expects {module.in_features} features but "
                        f"receives a {c}x{h}x{w} map ({c * h * w}) for input {tuple(input_shape)}"
                    )
                layers[name] = _linear_to_conv(module, c, h, w)
            else:
                if module.in_features != channels:
                    raise ValueError(
                        f"layer {name!r}: Linear expects {module.in_features} features, "
                        f"the previous layer gives {channels}"
                    )
                layers[name] = _linear_to_conv(module, channels, 1, 1)
            channels = module.out_features
        elif channels is None:  # still in the spatial part
            out = module(x)
            is_adaptive = isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
            if is_adaptive and out.shape == x.shape:
                continue
            layers[name] = module
            x = out
        elif isinstance(module, nn.BatchNorm1d):
            layers[name] = _batchnorm_2d(module)
        elif isinstance(module, _KEPT_AFTER_FLATTEN):
            layers[name] = module
        else:
            raise TypeError(
                f"layer {name!r}: cannot convolutionalize a {type(module).__name__} after the "
                "first Linear (expected Linear, activations, dropout or BatchNorm1d)"
            )
    if channels is None:
        raise ValueError("classifier has no nn.Linear layer to convolutionalize")
    return nn.Sequential(layers).train(classifier.training)
