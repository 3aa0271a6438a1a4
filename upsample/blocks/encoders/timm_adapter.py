"""Any timm model with a feature pyramid behind the multi-scale encoder interface.

timm builds the backbone with ``features_only=True``; the encoder keeps the features of nominal
strides 4, 8, 16 and 32 and lets timm trade the last strides for dilation (``output_stride``).
Weights are given as an already-loaded state dict in timm's key names (a whole classifier's is
fine: the head is dropped); finding and reading weight files is not this module's business
(see ``upsample.core.pretrained``). timm is imported only when such an encoder is built.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from upsample.blocks.checks import check_images
from upsample.blocks.encoders.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MultiScaleEncoder,
    encoder_strides,
)

#: prefix of timm encoder names in ``build_encoder`` ("timm-tf_efficientnet_lite0").
TIMM_PREFIX = "timm-"
_NOMINAL = encoder_strides(32)  # the strides of the four features before any dilation


def import_timm() -> Any:
    try:
        import timm
    except ImportError as error:  # pragma: no cover - timm is part of the pretrained extra
        raise ImportError(
            "timm encoders need the timm package: pip install -c constraints.txt "
            "'upsample-toolkit[pretrained]'"
        ) from error
    return timm


class _LoadReport(logging.Handler):
    """Collects what timm's pretrained loader reports (it loads feature extractors
    non-strictly and only logs missing keys)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def missing_keys(self, classifiers: tuple[str, ...]) -> list[str]:
        """Keys the state dict lacked, apart from the classifier's (which timm drops itself
        before building a feature extractor)."""
        keys: list[str] = []
        for message in self.messages:
            if message.startswith("Missing keys ("):
                listed = message[len("Missing keys (") : message.find(") discovered")]
                keys += [key.strip() for key in listed.split(",") if key.strip()]
        return [key for key in keys if not key.startswith(tuple(f"{c}." for c in classifiers))]


@contextmanager
def _timm_load_report() -> Iterator[_LoadReport]:
    """Capture timm's loader messages instead of printing them: its warning about the unused
    classifier keys of a whole-model state dict is expected here, missing keys are errors."""
    logger = logging.getLogger("timm.models._builder")
    report = _LoadReport()
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(report)
    try:
        yield report
    finally:
        logger.removeHandler(report)
        logger.setLevel(level)
        logger.propagate = propagate


def pyramid_indices(model_name: str, in_channels: int = 3) -> tuple[int, ...]:
    """Indices of timm's ``features_only`` outputs at strides 4, 8, 16 and 32 (the deepest
    feature of each stride), read from the undilated model built on the meta device.

    Raises:
        ValueError: unknown model, or a model without features at all four strides.
    """
    timm = import_timm()
    if not timm.is_model(model_name):
        raise ValueError(
            f"unknown timm model {model_name!r} (timm.list_models() lists the names; an encoder "
            f"name is '{TIMM_PREFIX}' + a timm name, e.g. '{TIMM_PREFIX}tf_efficientnet_lite0')"
        )
    try:
        with torch.device("meta"):
            probe = timm.create_model(
                model_name, pretrained=False, features_only=True, in_chans=in_channels
            )
    except Exception as error:  # timm raises many kinds for models without features_only
        raise ValueError(
            f"timm model {model_name!r} has no feature pyramid (features_only): {error}"
        ) from error
    reductions = list(probe.feature_info.reduction())
    indices = []
    for stride in _NOMINAL:
        matches = [i for i, r in enumerate(reductions) if r == stride]
        if not matches:
            raise ValueError(
                f"timm model {model_name!r} gives features at strides {reductions}; an encoder "
                "needs features at strides 4, 8, 16 and 32"
            )
        indices.append(matches[-1])
    return tuple(indices)


def _per_channel(values: Any, default: tuple[float, ...], in_channels: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in (values or default))
    if len(values) == in_channels:
        return values
    mean = sum(values) / len(values)  # e.g. gray input to an RGB-trained network
    return (mean,) * in_channels


def _feature_model(
    model_name: str, output_stride: int, in_channels: int, state_dict: Mapping[str, Tensor] | None
) -> nn.Module:
    """timm's ``features_only`` model at strides 4, 8, 16, 32 (dilated to ``output_stride``),
    loaded with ``state_dict`` when given; ``ValueError`` when it cannot be built or the weights
    do not fit."""
    timm = import_timm()
    kwargs: dict[str, Any] = {
        "features_only": True,
        "out_indices": pyramid_indices(model_name, in_channels),
        "in_chans": in_channels,
    }
    if output_stride != 32:
        kwargs["output_stride"] = output_stride
    if state_dict is not None:
        kwargs["pretrained"] = True
        kwargs["pretrained_cfg_overlay"] = {"state_dict": dict(state_dict)}
    try:
        with _timm_load_report() as report:
            model = timm.create_model(model_name, **kwargs)
    except (RuntimeError, TypeError, AssertionError, ValueError) as error:
        if (
            isinstance(error, RuntimeError)
            and state_dict is not None
            and "state_dict" in str(error)
        ):
            raise ValueError(
                f"the weights do not fit timm model {model_name!r}: {error}"
            ) from error
        raise ValueError(
            f"timm model {model_name!r} cannot build a feature pyramid at output stride "
            f"{output_stride}: {error}"
        ) from error
    # the feature extractor's configuration no longer names the classifier; the model's does
    classifiers = timm.models.get_pretrained_cfg_value(model_name, "classifier") or ()
    classifiers = (classifiers,) if isinstance(classifiers, str) else tuple(classifiers)
    missing = report.missing_keys(classifiers) if state_dict is not None else []
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"the weights do not fit timm model {model_name!r}: missing keys {shown}")
    return model


class TimmEncoder(MultiScaleEncoder):
    """A timm backbone (``features_only``) returning its features at strides 4, 8, 16, 32.

    (N, in_channels, H, W) -> 4 features with channels ``out_channels`` (timm's
    ``feature_info``) and sizes ``ceil(H / stride)`` for the usual padded convolutions. Output
    stride 16 / 8 uses timm's own dilation (``output_stride``).

    Args:
        model_name: any timm model with a feature pyramid ("tf_efficientnet_lite0",
            "resnet50", "convnext_tiny", ...).
        output_stride: 32, 16 or 8.
        in_channels: input channels; pretrained RGB stem weights are adapted by timm.
        state_dict: weights in timm's key names (a whole classifier's state dict; the head is
            dropped, the stem adapted to ``in_channels``); None = random initialisation.

    Attributes:
        mean, std: input normalisation of the model's pretrained configuration (what its
            ImageNet weights expect of images in [0, 1]), one value per input channel.
        pretrained_cfg: timm's pretrained configuration of the model (nothing is downloaded).
    """

    def __init__(
        self,
        model_name: str,
        output_stride: int = 32,
        in_channels: int = 3,
        state_dict: Mapping[str, Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.model_name = model_name
        self.in_channels = in_channels
        self.strides = encoder_strides(output_stride)
        self.model = _feature_model(model_name, output_stride, in_channels, state_dict)
        self.pretrained_cfg = dict(getattr(self.model, "pretrained_cfg", None) or {})
        reductions = tuple(self.model.feature_info.reduction())
        if reductions != self.strides:
            raise ValueError(
                f"timm model {model_name!r} at output stride {output_stride} gives strides "
                f"{reductions}, expected {self.strides}"
            )
        self.out_channels = tuple(self.model.feature_info.channels())  # type: ignore[assignment]
        self.mean = _per_channel(self.pretrained_cfg.get("mean"), IMAGENET_MEAN, in_channels)
        self.std = _per_channel(self.pretrained_cfg.get("std"), IMAGENET_STD, in_channels)

    def forward(self, x: Tensor) -> list[Tensor]:
        check_images(x, self.in_channels, type(self).__name__)
        return list(self.model(x))


def timm_model_name(encoder_name: str) -> str | None:
    """``"timm-resnet18"`` -> ``"resnet18"``; None for a name without the timm prefix."""
    return encoder_name[len(TIMM_PREFIX) :] if encoder_name.startswith(TIMM_PREFIX) else None
