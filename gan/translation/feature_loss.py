"""A perceptual loss on the features of an ImageNet-pretrained encoder (not trained on the
translation's labels): the L1 distance between the multi-scale features of the generated and the
real photo, averaged over the encoder's four feature levels (strides 4, 8, 16, 32).

SPADE trains with such a loss (on VGG19); OASIS shows it is not needed given long enough
training. On a small CPU budget it gives the generator a dense signal from the first step. The
encoder is frozen and kept outside the module's tree: it is neither trained, nor reduced by DDP,
nor saved in checkpoints (it is rebuilt from its name and weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from upsample.blocks.encoders.base import IMAGENET_MEAN, IMAGENET_STD
from upsample.core.pretrained import build_pretrained_encoder


def frozen_encoder(name: str, weights: str | None = "imagenet") -> nn.Module:
    """The encoder ``name`` (a ``blocks.build_encoder`` name such as
    "timm-tf_efficientnet_lite0") with its ImageNet weights found offline first
    (``upsample.core.pretrained``), in evaluation mode, without gradients for its parameters."""
    return build_pretrained_encoder(name, weights).eval().requires_grad_(False)


class FeatureLoss:
    """``mean over levels of L1(features(fake), features(real))`` for photos in [-1, 1],
    normalised with the encoder's statistics (a timm encoder's pretrained configuration,
    ImageNet's otherwise). Call it with (fake (N, 3, H, W), real (N, 3, H, W)) -> scalar."""

    def __init__(self, encoder: nn.Module) -> None:
        self.encoder = encoder
        mean = getattr(encoder, "mean", None) or IMAGENET_MEAN
        std = getattr(encoder, "std", None) or IMAGENET_STD
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def to(self, device: torch.device) -> FeatureLoss:
        """Move the encoder and the statistics to ``device``."""
        self.encoder.to(device)
        self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    def _features(self, photos: Tensor) -> list[Tensor]:
        x = ((photos + 1) / 2 - self.mean.to(photos.dtype)) / self.std.to(photos.dtype)
        return list(self.encoder(x))

    def __call__(self, fake: Tensor, real: Tensor) -> Tensor:
        with torch.no_grad():
            targets = self._features(real)
        levels = [
            F.l1_loss(feature.float(), target.float())
            for feature, target in zip(self._features(fake), targets, strict=True)
        ]
        return torch.stack(levels).mean()
