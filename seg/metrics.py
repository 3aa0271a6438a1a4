"""Segmentation scores computed from one confusion matrix (as in the original FCN code)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of one confusion matrix.

    Attributes:
        pixel_accuracy: correctly labelled pixels / all counted pixels (NaN if none counted).
        mean_accuracy: mean over present classes of per-class recall.
        per_class_iou: (K,) float64; NaN for a class absent from both target and prediction.
        mean_iou: mean of ``per_class_iou`` over the classes that are not NaN (NaN if all are).
        present: (K,) bool; which classes take part in the mean.
        num_pixels: number of counted (non-ignored) pixels, i.e. the matrix total.
    """

    pixel_accuracy: float
    mean_accuracy: float
    per_class_iou: torch.Tensor
    mean_iou: float
    present: torch.Tensor
    num_pixels: int


def scores_from_confusion_matrix(confusion: torch.Tensor) -> SegmentationScores:
    """Pixel accuracy, per-class IoU and mean IoU of a confusion matrix.

    Args:
        confusion: (K, K) counts, rows = target class, columns = predicted class (the
            torchmetrics convention). Ignored pixels must already be left out.

    A class with no pixel in the target and none in the prediction has an undefined IoU (0/0):
    it is reported as NaN and left out of the mean instead of counting as 0 or poisoning the mean.
    A class present in the target but never predicted (or vice versa) counts with IoU 0.
    """
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"expected a square (K, K) confusion matrix, got {tuple(confusion.shape)}")
    confusion = confusion.detach().to(torch.float64).cpu()
    true_positive = confusion.diagonal()
    target_count = confusion.sum(dim=1)
    predicted_count = confusion.sum(dim=0)
    union = target_count + predicted_count - true_positive
    total = confusion.sum()
    present = union > 0
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    per_class_iou = torch.where(present, true_positive / union.clamp_min(1), nan)
    in_target = target_count > 0
    recall = true_positive[in_target] / target_count[in_target]
    return SegmentationScores(
        pixel_accuracy=float(true_positive.sum() / total) if total > 0 else float("nan"),
        mean_accuracy=float(recall.mean()) if recall.numel() else float("nan"),
        per_class_iou=per_class_iou,
        mean_iou=float(per_class_iou[present].mean()) if present.any() else float("nan"),
        present=present,
        num_pixels=int(total),
    )
