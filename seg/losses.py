"""Segmentation losses that honour the ignore index, and the mask value that marks it."""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

#: mask value of pixels that no loss, metric or overlay counts (unlabelled, void, borders).
IGNORE_INDEX = 255

#: "ce" (cross-entropy), "dice" (soft Dice) or "ce+dice" (their sum, Dice scaled).
LossKind = Literal["ce", "dice", "ce+dice"]
LOSS_KINDS: tuple[str, ...] = get_args(LossKind)


def soft_dice_loss(
    logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX, smooth: float = 1.0
) -> Tensor:
    """Multi-class soft Dice loss, 1 - mean Dice over the classes present in ``target``.

    Args:
        logits: (N, K, H, W) raw scores; target: (N, H, W) class indices, ``ignore_index``
            pixels take no part.
        smooth: added to numerator and denominator (stabilises classes with few pixels).

    Returns:
        A scalar; 0 (with a gradient path) when no pixel is counted.
    """
    num_classes = logits.shape[1]
    valid = target != ignore_index
    probabilities = logits.float().softmax(dim=1) * valid.unsqueeze(1)
    one_hot = F.one_hot(torch.where(valid, target, 0).long(), num_classes).permute(0, 3, 1, 2)
    one_hot = one_hot * valid.unsqueeze(1)
    dims = (0, 2, 3)
    intersection = (probabilities * one_hot).sum(dims)
    counts = one_hot.sum(dims)
    dice = (2 * intersection + smooth) / (probabilities.sum(dims) + counts + smooth)
    present = (counts > 0).float()
    classes_present = present.sum()
    # the mean over the classes present, written without reading anything back from the device
    # (no branch on the data: no host synchronisation, one graph under torch.compile); with no
    # class present the dice terms are all masked out and the loss is 0, its gradient path kept
    mean_dice = (dice * present).sum() / classes_present.clamp(min=1.0)
    return (1.0 - mean_dice) * (classes_present > 0)


def cross_entropy(logits: Tensor, masks: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """``F.cross_entropy``'s weighted mean over the pixels that are not ``IGNORE_INDEX``, and 0
    (with a gradient path) when there are none, where ``F.cross_entropy`` gives NaN. Written
    without a branch on the data, so that a training step never waits to read the masks back
    from the device."""
    per_pixel = F.cross_entropy(
        logits, masks, weight=class_weights, ignore_index=IGNORE_INDEX, reduction="none"
    )
    valid = masks != IGNORE_INDEX
    if class_weights is None:
        total = valid.sum()
    else:
        total = torch.where(valid, class_weights[torch.where(valid, masks, 0)], 0.0).sum()
    return per_pixel.sum() / total.clamp(min=1e-12)


def segmentation_loss(
    logits: Tensor,
    masks: Tensor,
    kind: LossKind = "ce",
    class_weights: Tensor | None = None,
    dice_weight: float = 1.0,
) -> Tensor:
    """The segmentation model's training loss: a scalar from logits (N, K, H, W) and masks
    (N, H, W) of class indices (``IGNORE_INDEX`` pixels take no part).

    Args:
        kind: "ce" (cross-entropy, weighted per class by ``class_weights`` (K,) when given),
            "dice" (``soft_dice_loss``) or "ce+dice" (cross-entropy + ``dice_weight`` * Dice).
    """
    if kind not in LOSS_KINDS:
        raise ValueError(f"loss must be one of {LOSS_KINDS}, got {kind!r}")
    logits = logits.float()
    loss = logits.new_zeros(())
    if kind in ("ce", "ce+dice"):
        loss = cross_entropy(logits, masks, class_weights)
    if kind in ("dice", "ce+dice"):
        loss = loss + dice_weight * soft_dice_loss(logits, masks)
    return loss
