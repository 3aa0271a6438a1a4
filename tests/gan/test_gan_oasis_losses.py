"""OASIS's losses on small cases computed by hand: the class-balancing weights, the N + 1
cross-entropy (classes shifted by one, "fake" at 0, void weighing nothing) and LabelMix."""

from __future__ import annotations

import math

import pytest
import torch

from gan.translation.oasis_losses import (
    FAKE,
    class_balance_weights,
    fake_loss,
    labelmix_loss,
    labelmix_mask,
    mix,
    segmentation_loss,
)

# one image 2x3: class 0 four times, class 1 once, void (2) once; 2 classes
CLASSES = torch.tensor([[[0, 0, 0], [0, 1, 2]]])


def test_class_balance_weights_by_hand() -> None:
    weights = class_balance_weights(CLASSES, num_classes=2)
    # 5 labelled pixels, 2 classes present: class 0 -> 5 / (2 * 4), class 1 -> 5 / (2 * 1)
    expected = torch.tensor([[[5 / 8, 5 / 8, 5 / 8], [5 / 8, 5 / 2, 0.0]]])
    torch.testing.assert_close(weights, expected)
    assert weights[CLASSES < 2].mean() == pytest.approx(1.0)


def test_segmentation_loss_by_hand() -> None:
    logits = torch.zeros(1, 3, 2, 3)  # fake, class 0, class 1
    logits[0, 1, 0, 0] = 2.0  # one confident, correct pixel of class 0
    loss = segmentation_loss(logits, CLASSES, num_classes=2)
    uniform = math.log(3)
    confident = -math.log(math.exp(2) / (math.exp(2) + 2))
    per_pixel = [confident, uniform, uniform, uniform, uniform, 0.0]  # void: weight 0
    weights = [5 / 8] * 4 + [5 / 2, 0.0]
    expected = sum(w * p for w, p in zip(weights, per_pixel, strict=True)) / 6
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_fake_loss_targets_the_fake_channel_everywhere() -> None:
    logits = torch.zeros(2, 3, 2, 2)
    logits[:, FAKE] = 1.0
    expected = -math.log(math.e / (math.e + 2))
    assert fake_loss(logits).item() == pytest.approx(expected, rel=1e-6)


def test_labelmix_mask_takes_whole_labels() -> None:
    classes = torch.randint(0, 4, (3, 8, 8))
    mask = labelmix_mask(classes, 4, torch.Generator().manual_seed(0))
    assert mask.shape == (3, 1, 8, 8) and set(mask.unique().tolist()) <= {0.0, 1.0}
    for image in range(3):
        for label in classes[image].unique():
            assert mask[image, 0][classes[image] == label].unique().numel() == 1


def test_labelmix_by_hand() -> None:
    mask = torch.tensor([[[[1.0, 0.0]]]])  # left pixel real, right pixel generated
    real, fake = torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[-1.0, -2.0]]]])
    torch.testing.assert_close(mix(mask, real, fake), torch.tensor([[[[1.0, -2.0]]]]))
    mixed_logits = torch.tensor([[[[0.0, 0.0]]]])
    # target = mix of the logits = [1, -2]; MSE = (1 + 4) / 2
    assert labelmix_loss(mixed_logits, real, fake, mask).item() == pytest.approx(2.5)
