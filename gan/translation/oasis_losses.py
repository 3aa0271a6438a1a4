"""OASIS's losses (Schönfeld et al., ICLR 2021): the discriminator is a segmenter with N + 1
classes, the N semantic classes and "fake" (class index 0 here; semantic class ``c`` is ``c + 1``).

- The discriminator learns to segment real photos into their label map's classes (cross-entropy
  weighted per class by inverse frequency, so that small classes count as much as large ones) and
  to call every pixel of a generated photo "fake".
- The generator is trained so that every pixel of its photo reads as its true class (the same
  class-balanced cross-entropy on the discriminator's output for the generated photo).
- LabelMix regularises the discriminator: a photo mixed from real and generated regions by whole
  classes, and the discriminator's output on it is pulled (mean squared error) towards the same
  mix of its outputs on the real and the generated photo.

Pixels of the void class (label maps' "don't care") weigh nothing in the class-balanced losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: the discriminator's output channel of "fake"
FAKE = 0


def class_balance_weights(classes: Tensor, num_classes: int) -> Tensor:
    """Per-pixel weights (N, H, W) for class indices (N, H, W) in 0..num_classes (the last is
    void): ``labelled pixels / (classes present * pixels of the class)``, so that every class
    present in the batch weighs the same in total; void pixels weigh 0. The weights of the
    labelled pixels average to 1."""
    labelled = classes < num_classes
    counts = torch.bincount(classes[labelled], minlength=num_classes).to(torch.float32)
    present = (counts > 0).sum().clamp(min=1)
    coefficients = labelled.sum() / (present * counts.clamp(min=1))
    coefficients = torch.cat([coefficients, coefficients.new_zeros(1)])  # void
    return coefficients[classes]


def segmentation_loss(logits: Tensor, classes: Tensor, num_classes: int) -> Tensor:
    """Class-balanced cross-entropy of (N, num_classes + 1, H, W) logits against the true
    classes (target ``class + 1``; void pixels weigh 0): the discriminator's loss on real photos
    and the generator's loss on generated ones."""
    target = (classes + 1).clamp(max=num_classes)  # void gets any valid index; its weight is 0
    loss = F.cross_entropy(logits.float(), target, reduction="none")
    return (loss * class_balance_weights(classes, num_classes)).mean()


def fake_loss(logits: Tensor) -> Tensor:
    """Cross-entropy of (N, num_classes + 1, H, W) logits against "fake" at every pixel."""
    target = torch.full(
        (logits.shape[0], *logits.shape[2:]), FAKE, dtype=torch.long, device=logits.device
    )
    return F.cross_entropy(logits.float(), target)


def labelmix_mask(classes: Tensor, num_labels: int, generator: torch.Generator | None = None):
    """A LabelMix mask (N, 1, H, W) of 0/1: every label of every image (``num_labels`` of them,
    void included) is taken wholly from the real photo (1) or the generated one (0), each with
    probability 1/2, drawn from ``generator`` (default: the global one)."""
    bits = torch.randint(
        0, 2, (classes.shape[0], num_labels), generator=generator, device=classes.device
    )
    return bits.gather(1, classes.flatten(1)).view_as(classes).unsqueeze(1).float()


def mix(mask: Tensor, real: Tensor, fake: Tensor) -> Tensor:
    """``mask * real + (1 - mask) * fake`` (images or logits; the mask broadcasts)."""
    return mask * real + (1 - mask) * fake


def labelmix_loss(mixed_logits: Tensor, real_logits: Tensor, fake_logits: Tensor, mask: Tensor):
    """Mean squared error between the discriminator's logits on the mixed photo and the same mix
    of its logits on the real and the generated photo."""
    return F.mse_loss(mixed_logits.float(), mix(mask, real_logits, fake_logits).float())
