"""Losses: ignore index honoured, Dice against a hand computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seg.losses import cross_entropy, soft_dice_loss


def test_dice_matches_hand_computation_and_ignores_255() -> None:
    # Huge logits make the softmax one-hot: predictions [0, 1, 1] on pixels with target
    # [0, 1, 0]; the fourth pixel is ignored although its prediction is wrong.
    logits = torch.full((1, 2, 1, 4), -50.0)
    for pixel, cls in enumerate([0, 1, 1, 1]):
        logits[0, cls, 0, pixel] = 50.0
    target = torch.tensor([[[0, 1, 0, 255]]])
    # class 0: intersection 1, |p| + |t| = 1 + 2 -> dice (2 + 1) / (3 + 1)
    # class 1: intersection 1, |p| + |t| = 2 + 1 -> dice (2 + 1) / (3 + 1)
    expected = 1 - 0.75
    assert soft_dice_loss(logits, target).item() == pytest.approx(expected, abs=1e-6)


def test_dice_averages_only_classes_in_target() -> None:
    logits = torch.zeros(1, 3, 2, 2, requires_grad=True)
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    loss = soft_dice_loss(logits, target)
    # class 0 only: p = 1/3 per pixel; dice = (2 * 4/3 + 1) / (4/3 + 4 + 1)
    assert loss.item() == pytest.approx(1 - (8 / 3 + 1) / (4 / 3 + 5))
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_all_ignored_gives_zero_with_gradient() -> None:
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), 255)
    loss = soft_dice_loss(logits, target)
    loss.backward()
    assert loss.item() == 0.0


def test_module_cross_entropy_ignores_255_and_uses_class_weights() -> None:
    from seg.models import FCNConfig
    from seg.module import SegmentationModule

    network = FCNConfig(variant="fcn32s", width=0.0625)
    module = SegmentationModule(num_classes=3, network=network, class_weights=[1.0, 2.0, 0.5])
    logits = torch.randn(2, 3, 5, 6)
    masks = torch.randint(0, 3, (2, 5, 6))
    masks[0, 0] = 255
    expected = F.cross_entropy(
        logits, masks, weight=torch.tensor([1.0, 2.0, 0.5]), ignore_index=255
    )
    assert module.compute_loss(logits, masks).item() == pytest.approx(expected.item(), rel=1e-6)
    all_ignored = torch.full((2, 5, 6), 255)
    assert module.compute_loss(logits, all_ignored).item() == 0.0


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_equals_torchs_mean_and_is_zero_on_all_ignored(weighted: bool) -> None:
    """``seg.losses.cross_entropy`` (written without a branch on the data) against
    ``F.cross_entropy``'s weighted mean; where every pixel is ignored, 0 with a gradient."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 7, generator=generator, requires_grad=True)
    masks = torch.randint(0, 4, (2, 5, 7), generator=generator)
    masks[0, :2] = 255
    weights = torch.rand(4, generator=generator) + 0.1 if weighted else None
    expected = F.cross_entropy(logits, masks, weight=weights, ignore_index=255)
    torch.testing.assert_close(cross_entropy(logits, masks, weights), expected)
    ignored = cross_entropy(logits, torch.full_like(masks, 255), weights)
    assert ignored.item() == 0.0
    ignored.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)
