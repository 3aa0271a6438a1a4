"""Mean IoU and accuracies from a confusion matrix, checked against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from seg.metrics import scores_from_confusion_matrix

# 8 pixels, 4 classes. The last two pixels are ignored (255); class 3 is predicted only on an
# ignored pixel, so it is absent from both target and prediction and must leave the mean alone.
TARGET = torch.tensor([[0, 0, 0, 1, 1, 2, 255, 255]])
PREDICTION = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 0]])
# rows = target, columns = prediction, counted pixels only
HAND_CONFUSION = torch.tensor(
    [
        [2, 1, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 0],
    ]
)


def test_torchmetrics_confusion_matrix_leaves_out_ignored_pixels() -> None:
    metric = MulticlassConfusionMatrix(4, ignore_index=255)
    metric.update(PREDICTION, TARGET)
    assert torch.equal(metric.compute(), HAND_CONFUSION)


def test_scores_match_hand_computation_with_absent_class() -> None:
    scores = scores_from_confusion_matrix(HAND_CONFUSION)
    # IoU = TP / (TP + FP + FN): class 0: 2 / (2 + 0 + 1); class 1: 1 / (1 + 1 + 1);
    # class 2: 1 / (1 + 1 + 0); class 3: 0 / 0 -> left out.
    expected_iou = [2 / 3, 1 / 3, 1 / 2]
    assert scores.per_class_iou[:3].tolist() == pytest.approx(expected_iou)
    assert math.isnan(scores.per_class_iou[3])
    assert scores.present.tolist() == [True, True, True, False]
    assert scores.mean_iou == pytest.approx(sum(expected_iou) / 3)  # 0.5, not 0.375 or NaN
    assert scores.pixel_accuracy == pytest.approx(4 / 6)
    assert scores.mean_accuracy == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert scores.num_pixels == 6


def test_class_in_target_but_never_predicted_counts_as_zero() -> None:
    confusion = torch.tensor([[3, 0], [1, 0]])  # class 1 present, never predicted
    scores = scores_from_confusion_matrix(confusion)
    assert scores.per_class_iou.tolist() == pytest.approx([3 / 4, 0.0])
    assert scores.mean_iou == pytest.approx(3 / 8)


def test_empty_matrix_gives_nan_not_an_error() -> None:
    scores = scores_from_confusion_matrix(torch.zeros(3, 3))
    assert math.isnan(scores.mean_iou) and math.isnan(scores.pixel_accuracy)
    assert scores.num_pixels == 0


def test_rejects_non_square_matrix() -> None:
    with pytest.raises(ValueError, match="square"):
        scores_from_confusion_matrix(torch.zeros(2, 3))
