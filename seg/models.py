"""FCN segmentation networks composed from ``upsample.blocks``: encoder -> optional context -> skip
decoder.

``FCN`` owns nothing but tensors in and out: float images (N, 3, H, W) in [0, 1] in, class
logits (N, K, H, W) out, for any H and W at least ``min_input_size``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsample.blocks import (
    ASPP,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DilatedStack,
    FCNDecoder,
    build_encoder,
)
from upsample.blocks.encoders.timm_adapter import timm_model_name
from upsample.blocks.fcn_decoder import FCNVariant
from upsample.blocks.upsample import UpsamplerKind

logger = logging.getLogger(__name__)

#: FCN-32s/16s/8s (skip fusion at output stride 32) or the atrous FCN (output stride 8 or 16).
Variant = Literal["fcn32s", "fcn16s", "fcn8s", "atrous"]
#: the atrous FCN's context module: ASPP or the stacked dilated block.
ContextKind = Literal["aspp", "dilated"]
_SKIP_DECODERS: dict[str, FCNVariant] = {"fcn32s": "32s", "fcn16s": "16s", "fcn8s": "8s"}


def check_images(
    images: Tensor,
    in_channels: int,
    min_input_size: int,
    owner: str,
    error: type[Exception] = ValueError,
) -> None:
    """Raise ``error``, its message starting with ``owner`` (the model or its file), unless
    ``images`` is (N, in_channels, H, W) with H and W at least ``min_input_size``: what a
    segmenter takes, whichever engine runs it."""
    if images.ndim != 4 or images.shape[1] != in_channels:
        raise error(
            f"{owner}: the model takes images of shape (N, {in_channels}, H, W), got "
            f"{tuple(images.shape)}"
        )
    height, width = images.shape[-2:]
    if min(height, width) < min_input_size:
        raise error(
            f"{owner}: input {height}x{width} is too small; the model needs height and width "
            f">= {min_input_size}"
        )


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
        #: the ``FCNConfig`` it was built from (set by ``FCNConfig.build``), else None.
        self.config: FCNConfig | None = None
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
        owner = f"FCN (output stride {self.output_stride})"
        check_images(images, self.in_channels, self.min_input_size, owner)
        height, width = images.shape[-2:]
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
    variant: FCNVariant,
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
    ``upsample.core.pretrained``, local copies first); other encoders take ``weights`` as they
    are."""
    model_name = timm_model_name(encoder)
    if model_name is not None and weights is not None:
        from upsample.core.pretrained import resolve_encoder_weights

        resolved = resolve_encoder_weights(model_name, weights)
        logger.info("encoder %s: weights from %s", encoder, resolved.source)
        weights = resolved.state_dict  # type: ignore[assignment]
    return build_encoder(
        encoder, in_channels=in_channels, output_stride=output_stride, width=width, weights=weights
    )


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


def default_aspp_rates(output_stride: int) -> tuple[int, int, int]:
    """DeepLab's ASPP rates: (6, 12, 18) at output stride 16, doubled at output stride 8."""
    return (6, 12, 18) if output_stride == 16 else (12, 24, 36)


def _context(
    kind: ContextKind,
    in_channels: int,
    output_stride: int,
    width: float,
    channels: int | None,
    rates: Sequence[int] | None,
) -> tuple[nn.Module, int]:
    """The atrous FCN's context module over the deepest feature, and its output channels."""
    if kind == "aspp":
        channels = channels or max(16, round(256 * width))
        return ASPP(
            in_channels, channels, rates=tuple(rates or default_aspp_rates(output_stride))
        ), channels
    if kind == "dilated":
        module = DilatedStack(in_channels, dilations=tuple(rates or (1, 1, 2, 1, 1, 2)))
        return module, int(getattr(module, "out_channels", in_channels))
    raise ValueError(f"context must be 'aspp' or 'dilated', got {kind!r}")


@dataclass(frozen=True)
class FCNConfig:
    """The architecture of an FCN, everything but its classes: what ``SegmentationModule``
    builds its network from (``model.network`` in the configs) and what a checkpoint stores
    to rebuild it.

    "fcn32s", "fcn16s" and "fcn8s" are the skip FCNs at output stride 32: "32s" scores the
    stride-32 feature and upsamples 32x in one step; "16s" upsamples those scores 2x, adds
    the stride-16 scores and upsamples 16x; "8s" also fuses the stride-8 scores, then
    upsamples 8x. "atrous": the encoder's last strides become dilations (output stride 8 or
    16), a context module (ASPP or a dilated stack) refines the deepest feature, and the
    decoder upsamples it (``decoder_variant`` "32s": directly; "16s"/"8s" add skip fusion).

    Args:
        variant: "fcn32s", "fcn16s", "fcn8s" or "atrous".
        encoder: ``blocks.build_encoder`` name ("vgg", "vgg_bn", "resnet18s", "resnet50s",
            "tv_vgg16", "tv_resnet18", "timm-<name>", ...).
        width: channel multiplier of the toolkit's own encoders.
        upsampler: "transposed" (bilinear-initialised), "resize_conv" or "pixel_shuffle".
        output_stride: 8 or 16 (atrous only).
        context: "aspp" or "dilated" (atrous only).
        context_channels: ASPP output channels (default ``256 * width``, at least 16).
        context_rates: ASPP rates (default ``default_aspp_rates(output_stride)``) or the dilated
            stack's dilations (default (1, 1, 2, 1, 1, 2)).
        decoder_variant: the atrous FCN's decoder, "32s", "16s" or "8s".
        encoder_weights: torchvision weights name for the "tv_*" encoders; "imagenet" or a
            weight file for the "timm-*" encoders (found offline first, see
            ``upsample.core.pretrained``); None: from scratch.
        in_channels: image channels.
        mean, std: input normalisation; None takes the encoder's (a timm encoder's pretrained
            configuration, ImageNet's for RGB otherwise). ``resolved`` fills them in.
    """

    variant: Variant = "fcn8s"
    encoder: str = "vgg"
    width: float = 1.0
    upsampler: UpsamplerKind = "transposed"
    output_stride: Literal[8, 16] = 8
    context: ContextKind = "aspp"
    context_channels: int | None = None
    context_rates: list[int] | None = None
    decoder_variant: FCNVariant = "32s"
    encoder_weights: str | None = None
    in_channels: int = 3
    mean: list[float] | None = None
    std: list[float] | None = None

    def build(self, num_classes: int, pretrained: bool = True) -> FCN:
        """The FCN with ``num_classes`` output classes. ``pretrained=False`` leaves out
        ``encoder_weights`` (the weights then come from a checkpoint: nothing is read or
        downloaded)."""
        atrous = self.variant == "atrous"
        if not atrous and self.variant not in _SKIP_DECODERS:
            variants = [*_SKIP_DECODERS, "atrous"]
            raise ValueError(f"variant must be one of {variants}, got {self.variant!r}")
        if atrous and self.output_stride not in (8, 16):
            raise ValueError(
                f"output_stride must be 8 or 16 for the atrous FCN, got {self.output_stride}"
            )
        weights = self.encoder_weights if pretrained else None
        stride = self.output_stride if atrous else 32
        backbone = _backbone(self.encoder, self.in_channels, stride, self.width, weights)
        context, channels = None, backbone.out_channels[3]
        if atrous:
            context, channels = _context(
                self.context,
                channels,
                stride,
                self.width,
                self.context_channels,
                self.context_rates,
            )
        decoder_variant = self.decoder_variant if atrous else _SKIP_DECODERS[self.variant]
        decoder = _decoder(backbone, channels, num_classes, decoder_variant, self.upsampler)
        normalisation = _normalisation(self.in_channels, backbone, self.mean, self.std)
        network = FCN(backbone, decoder, context, num_classes=num_classes, **normalisation)
        network.config = self
        return network

    def resolved(self, network: FCN) -> FCNConfig:
        """This config with the normalisation that ``network`` (built from it) uses, so that
        rebuilding it needs no encoder's pretrained configuration."""
        values = {
            key: [float(v) for v in getattr(network, key).flatten().tolist()]
            for key in ("mean", "std")
        }
        return replace(self, **values)


def build_fcn(variant: Variant, num_classes: int, **kwargs: Any) -> FCN:
    """Build an FCN by variant name ("fcn32s", "fcn16s", "fcn8s", "atrous"); ``kwargs`` are the
    other ``FCNConfig`` fields (``output_stride``, ``context``... matter only for "atrous")."""
    return FCNConfig(variant=variant, **kwargs).build(num_classes)
