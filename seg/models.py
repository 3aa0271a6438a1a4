"""FCN segmentation networks composed from ``blocks``: encoder -> optional context -> skip decoder.

``FCN`` owns nothing but tensors in and out: float images (N, 3, H, W) in [0, 1] in, class
logits (N, K, H, W) out, for any H and W at least ``min_input_size``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from blocks import ASPP, DilatedStack, FCNDecoder, build_encoder
from blocks.encoders.timm_adapter import timm_model_name

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Variant = Literal["fcn32s", "fcn16s", "fcn8s", "atrous"]
ContextKind = Literal["aspp", "dilated"]
UpsamplerKind = Literal["transposed", "resize_conv", "pixel_shuffle"]
DecoderVariant = Literal["32s", "16s", "8s"]


class FCN(nn.Module):
    """Fully convolutional segmentation network.

    ``encoder`` gives 4 feature maps (nominal strides 4, 8, 16, 32; actual strides in
    ``encoder.strides``); ``context`` (optional) refines the deepest one at constant size;
    ``decoder`` fuses the stride-8, 16 and 32 features into logits at the input size.

    forward: images (N, C, H, W) float in [0, 1] -> logits (N, num_classes, H, W).
    The input is normalised with ``mean``/``std`` (ImageNet statistics by default, so that
    torchvision weights work), zero-padded at the bottom/right to a multiple of the output
    stride (every stage then divides exactly) and the logits are cropped back, so any height
    and width >= ``min_input_size`` works (e.g. 97x131).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        context: nn.Module | None = None,
        num_classes: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        min_input_size: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.context = context
        self.decoder = decoder
        self.num_classes = num_classes or int(getattr(decoder, "num_classes", 0)) or None
        self.output_stride = int(max(encoder.strides))
        self.in_channels = len(mean)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        encoder_minimum = int(getattr(encoder, "min_input_size", 1))
        # Below one output-stride cell the input would be mostly padding.
        self.min_input_size = min_input_size or self.output_stride
        self._padded_minimum = encoder_minimum

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the input is padded to: the next multiple of the output stride (at least
        the encoder's own minimum)."""
        stride = self.output_stride
        padded = []
        for size in (height, width):
            size = max(size, self._padded_minimum)
            # integer arithmetic, not math.ceil(size / stride): under torch.export the size is
            # symbolic and a float ceil would tie the exported graph to the example's size
            padded.append((size + stride - 1) // stride * stride)
        return padded[0], padded[1]

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"FCN expects images of shape (N, {self.in_channels}, H, W), "
                f"got {tuple(images.shape)}"
            )
        height, width = images.shape[-2:]
        if min(height, width) < self.min_input_size:
            raise ValueError(
                f"input {height}x{width} is too small: this FCN needs height and width >= "
                f"{self.min_input_size} (its output stride is {self.output_stride})"
            )
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        padded_height, padded_width = self.padded_size(height, width)
        # Padded unconditionally (a no-op pad costs one copy of the input): a branch on the
        # size would fix an exported graph (ONNX, torch.export) to the example's case.
        x = F.pad(x, (0, padded_width - width, 0, padded_height - height))
        features = list(self.encoder(x))[1:]
        if self.context is not None:
            features[-1] = self.context(features[-1])
        logits = self.decoder(features, (padded_height, padded_width))
        return logits[..., :height, :width]


def _decoder(
    encoder: nn.Module,
    deepest_channels: int,
    num_classes: int,
    variant: DecoderVariant,
    upsampler: UpsamplerKind,
) -> nn.Module:
    in_channels = (*tuple(encoder.out_channels[1:3]), deepest_channels)
    return FCNDecoder(
        in_channels,
        num_classes,
        variant=variant,
        strides=tuple(encoder.strides[1:]),
        upsampler=upsampler,
    )


def _backbone(
    encoder: str, in_channels: int, output_stride: int, width: float, weights: str | None
) -> nn.Module:
    """``build_encoder`` with ``weights`` resolved for timm encoders ("imagenet" or a file:
    ``common.pretrained``, local copies first); other encoders take ``weights`` as they are."""
    model_name = timm_model_name(encoder)
    if model_name is not None and weights is not None:
        from common.pretrained import resolve_encoder_weights

        resolved = resolve_encoder_weights(model_name, weights)
        logger.info("encoder %s: weights from %s", encoder, resolved.source)
        weights = resolved.state_dict  # type: ignore[assignment]
    return build_encoder(
        encoder, in_channels=in_channels, output_stride=output_stride, width=width, weights=weights
    )


def _skip_fcn(
    variant: DecoderVariant,
    num_classes: int,
    encoder: str,
    width: float,
    upsampler: UpsamplerKind,
    encoder_weights: str | None,
    in_channels: int,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> FCN:
    backbone = _backbone(encoder, in_channels, 32, width, encoder_weights)
    decoder = _decoder(backbone, backbone.out_channels[3], num_classes, variant, upsampler)
    normalisation = _normalisation(in_channels, backbone, mean, std)
    return FCN(backbone, decoder, num_classes=num_classes, **normalisation)


def _normalisation(
    in_channels: int,
    backbone: nn.Module | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict:
    """Input normalisation: ``mean``/``std`` when given, else the encoder's own (a timm
    encoder's pretrained configuration), else ImageNet's for RGB and (0.5, 0.25) otherwise."""
    if mean is not None and std is not None:
        return {"mean": tuple(mean), "std": tuple(std)}
    if mean is not None or std is not None:
        raise ValueError("give both mean and std, or neither")
    if backbone is not None and getattr(backbone, "mean", None) is not None:
        return {"mean": tuple(backbone.mean), "std": tuple(backbone.std)}
    if in_channels == 3:
        return {}
    return {"mean": (0.5,) * in_channels, "std": (0.25,) * in_channels}


def fcn32s(
    num_classes: int,
    encoder: str = "vgg",
    width: float = 1.0,
    upsampler: UpsamplerKind = "transposed",
    encoder_weights: str | None = None,
    in_channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> FCN:
    """FCN-32s: score the stride-32 feature and upsample 32x in one step.

    Args:
        num_classes: classes including background (K of the output logits).
        encoder: a ``blocks.build_encoder`` name ("vgg", "resnet18s", "tv_vgg16",
            "timm-tf_efficientnet_lite0", ...).
        width: channel multiplier of the toolkit's own encoders.
        upsampler: "transposed" (bilinear-initialised), "resize_conv" or "pixel_shuffle".
        encoder_weights: torchvision weights name for "tv_*" encoders; "imagenet" or a weight
            file for "timm-*" encoders (found offline first: ``common.pretrained``); None =
            random init.
        mean, std: input normalisation (default: the encoder's pretrained configuration for
            timm encoders, ImageNet's otherwise).
    """
    return _skip_fcn(
        "32s", num_classes, encoder, width, upsampler, encoder_weights, in_channels, mean, std
    )


def fcn16s(
    num_classes: int,
    encoder: str = "vgg",
    width: float = 1.0,
    upsampler: UpsamplerKind = "transposed",
    encoder_weights: str | None = None,
    in_channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> FCN:
    """FCN-16s: stride-32 scores upsampled 2x and fused with stride-16 scores, then 16x.
    Arguments as ``fcn32s``."""
    return _skip_fcn(
        "16s", num_classes, encoder, width, upsampler, encoder_weights, in_channels, mean, std
    )


def fcn8s(
    num_classes: int,
    encoder: str = "vgg",
    width: float = 1.0,
    upsampler: UpsamplerKind = "transposed",
    encoder_weights: str | None = None,
    in_channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> FCN:
    """FCN-8s: fuses the stride-32, 16 and 8 scores, then upsamples 8x. Arguments as ``fcn32s``."""
    return _skip_fcn(
        "8s", num_classes, encoder, width, upsampler, encoder_weights, in_channels, mean, std
    )


def default_aspp_rates(output_stride: int) -> tuple[int, int, int]:
    """DeepLab's ASPP rates: (6, 12, 18) at output stride 16, doubled at output stride 8."""
    return (6, 12, 18) if output_stride == 16 else (12, 24, 36)


def fcn_atrous(
    num_classes: int,
    encoder: str = "resnet18s",
    width: float = 1.0,
    upsampler: UpsamplerKind = "transposed",
    output_stride: Literal[8, 16] = 8,
    context: ContextKind = "aspp",
    context_channels: int | None = None,
    context_rates: Sequence[int] | None = None,
    decoder_variant: DecoderVariant = "32s",
    encoder_weights: str | None = None,
    in_channels: int = 3,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> FCN:
    """Atrous FCN: the encoder's last strides become dilations (output stride 8 or 16), a context
    module (ASPP or a dilated stack) refines the deepest feature, and the decoder upsamples it
    (``decoder_variant="32s"``: directly; "16s"/"8s" add skip fusion as in FCN).

    Args:
        context_channels: ASPP output channels (default ``256 * width``, at least 16).
        context_rates: ASPP rates (default ``default_aspp_rates(output_stride)``) or the dilated
            stack's dilations (default (1, 1, 2, 1, 1, 2)).
        Other arguments as ``fcn32s``.
    """
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16 for the atrous FCN, got {output_stride}")
    backbone = _backbone(encoder, in_channels, output_stride, width, encoder_weights)
    deepest = backbone.out_channels[3]
    module: nn.Module
    if context == "aspp":
        channels = context_channels or max(16, round(256 * width))
        rates = tuple(context_rates or default_aspp_rates(output_stride))
        module = ASPP(deepest, channels, rates=rates)
    elif context == "dilated":
        dilations = tuple(context_rates or (1, 1, 2, 1, 1, 2))
        module = DilatedStack(deepest, dilations=dilations)
        channels = getattr(module, "out_channels", deepest)
    else:
        raise ValueError(f"context must be 'aspp' or 'dilated', got {context!r}")
    decoder = _decoder(backbone, channels, num_classes, decoder_variant, upsampler)
    normalisation = _normalisation(in_channels, backbone, mean, std)
    return FCN(backbone, decoder, module, num_classes=num_classes, **normalisation)


FCN_BUILDERS: dict[str, Callable[..., FCN]] = {
    "fcn32s": fcn32s,
    "fcn16s": fcn16s,
    "fcn8s": fcn8s,
    "atrous": fcn_atrous,
}


def build_fcn(variant: Variant, num_classes: int, **kwargs: object) -> FCN:
    """Build an FCN by variant name ("fcn32s", "fcn16s", "fcn8s", "atrous"); ``kwargs`` go to
    the builder (``output_stride``, ``context``... only for "atrous")."""
    if variant not in FCN_BUILDERS:
        raise ValueError(f"variant must be one of {sorted(FCN_BUILDERS)}, got {variant!r}")
    return FCN_BUILDERS[variant](num_classes, **kwargs)
