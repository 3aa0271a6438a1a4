"""The FCN-score of the label-to-photo benchmark against hand-computed numbers, and its
diversity measure."""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.translation_scores import FCNScorer, diversity, fcn_scores


def test_fcn_scores_of_a_hand_computed_confusion_matrix() -> None:
    confusion = torch.tensor([[3, 1, 0], [1, 2, 1], [0, 0, 0]])  # rows: label map, columns: FCN
    scores = fcn_scores(confusion)
    assert scores["pixel_accuracy"] == 5 / 8  # (3 + 2) correct of 8 pixels
    assert scores["class_accuracy"] == (3 / 4 + 2 / 4) / 2  # class 2 is in no label map
    # IoU: 3 / (4 + 4 - 3), 2 / (4 + 3 - 2), 0 / (0 + 1 - 0): class 2 was predicted, so it counts
    assert math.isclose(scores["class_iou"], (3 / 5 + 2 / 5 + 0) / 3)
    assert scores["per_class_iou"] == [3 / 5, 2 / 5, 0.0]
    assert scores["pixels"] == 8
    untouched = fcn_scores(torch.tensor([[2, 0, 0], [0, 1, 0], [0, 0, 0]]))
    assert untouched["per_class_iou"][2] is None and untouched["class_iou"] == 1.0


class ChannelIsClass(nn.Module):
    """A stand-in segmenter: the class of a pixel is round(10 x its red value)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        classes = (images[:, 0] * 10).round().long()
        return nn.functional.one_hot(classes, 3).permute(0, 3, 1, 2).float()


def test_the_scorer_ignores_void_and_upsamples_small_photos() -> None:
    scorer = FCNScorer(ChannelIsClass(), num_classes=3, void=11)
    labels = torch.tensor([[0, 0, 1, 1], [2, 2, 11, 11]])
    photo = torch.zeros(3, 1, 2)  # half the size: left column predicts class 0, right class 1
    photo[0, 0, 1] = 0.1
    predicted = scorer.update(photo, labels)
    assert predicted.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]
    # counted: (0,0) x2, (1,1) x2, (2,0) x2; the two void pixels are left out
    assert scorer.confusion.compute().tolist() == [[2, 0, 0], [0, 2, 0], [2, 0, 0]]
    scores = scorer.scores()
    assert scores["pixel_accuracy"] == 4 / 6
    assert math.isclose(scores["class_accuracy"], (1 + 1 + 0) / 3)
    assert math.isclose(scores["class_iou"], (2 / 4 + 1 + 0) / 3)


def test_diversity_is_the_mean_intensity_difference_across_seeds() -> None:
    first = [torch.zeros(3, 2, 2, dtype=torch.uint8), torch.full((3, 2, 2), 255, dtype=torch.uint8)]
    second = [torch.full((3, 2, 2), 51, dtype=torch.uint8), first[1].clone()]
    assert math.isclose(diversity(first, second), (0.2 + 0.0) / 2, rel_tol=1e-6)
    assert diversity(first, first) == 0.0
