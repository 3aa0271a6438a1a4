"""GAN losses on discriminator logits.

``bce``: the non-saturating loss of Goodfellow et al. (2014) as binary cross-entropy with logits;
the discriminator may use one-sided label smoothing (real target ``1 - smoothing``).
``hinge``: the hinge loss of Lim & Ye (2017) / Miyato et al. (2018).
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

LossKind = Literal["bce", "hinge"]


def discriminator_loss(
    real_logits: Tensor, fake_logits: Tensor, kind: LossKind = "bce", label_smoothing: float = 0.0
) -> Tensor:
    """Discriminator loss from logits ``(N,)`` of real and generated images (a scalar).

    bce: ``BCE(D(x), 1 - smoothing) + BCE(D(G(z)), 0)``; hinge: ``mean(relu(1 - D(x))) +
    mean(relu(1 + D(G(z))))``.
    """
    if kind == "bce":
        real_target = real_logits.new_full(real_logits.shape, 1.0 - label_smoothing)
        return F.binary_cross_entropy_with_logits(
            real_logits, real_target
        ) + F.binary_cross_entropy_with_logits(
            fake_logits, fake_logits.new_zeros(fake_logits.shape)
        )
    if kind == "hinge":
        if label_smoothing:
            raise ValueError("label_smoothing applies to the 'bce' loss only")
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    raise ValueError(f"loss must be 'bce' or 'hinge', got {kind!r}")


def generator_loss(fake_logits: Tensor, kind: LossKind = "bce") -> Tensor:
    """Generator loss from the discriminator's logits ``(N,)`` on generated images (a scalar).

    bce (non-saturating): ``BCE(D(G(z)), 1) = mean(softplus(-D(G(z))))``; hinge: ``-mean(D(G(z)))``.
    """
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(
            fake_logits, fake_logits.new_ones(fake_logits.shape)
        )
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"loss must be 'bce' or 'hinge', got {kind!r}")
