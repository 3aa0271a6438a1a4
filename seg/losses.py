"""Segmentation losses that honour the ignore index."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seg.visualize import IGNORE_INDEX


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
    cardinality = probabilities.sum(dims) + one_hot.sum(dims)
    dice = (2 * intersection + smooth) / (cardinality + smooth)
    present = one_hot.sum(dims) > 0
    if not present.any():
        return logits.sum() * 0.0
    return 1.0 - dice[present].mean()
